# make_classic_reference.R -- the six classic data sets and metafor's own help-page analyses of
# them, for analysis/datasets/ and tests/test_classic_datasets.py.
#
# Run from the repository root:   Rscript tests/reference/make_classic_reference.R
# Output:                         analysis/datasets/<name>.csv (the data, full precision)
#                                 tests/reference/classic_reference.json (the expected values)
#
# The data sets are metafor's dat.* (since metafor 3.0 they live in the 'metadat' package, which
# metafor loads): dat.bcg, dat.normand1999, dat.hackshaw1998, dat.yusuf1985, dat.collins1985b,
# dat.raudenbush1985. The analyses are the ones their help pages (?dat.xxx) run, plus ML fits
# and anova() comparisons. REML/ML use tight control (as make_reference.R) so the values are the
# converged ones; confint uses tol=1e-12. Doubles are written with %.17g (json_writer.R);
# NA / NaN / +-Inf -> null. Every case is self-contained (its inputs are in the case).

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))
source(file.path("tests", "reference", "dataset_csv.R"))

OUT <- file.path("tests", "reference", "classic_reference.json")
CSV_DIR <- file.path("analysis", "datasets")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
CTRL_S <- "control=list(threshold=1e-12, maxiter=10000, tol=1e-12)"
ITER <- c("REML", "ML", "EB", "PM", "SJ")

arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))
named <- function(x) as.list(setNames(as.numeric(x), names(x)))

# ---------------------------------------------------------------- the data sets and their CSVs
DATASETS <- list(bcg = dat.bcg, normand1999 = dat.normand1999, hackshaw1998 = dat.hackshaw1998,
                 yusuf1985 = dat.yusuf1985, collins1985b = dat.collins1985b,
                 raudenbush1985 = dat.raudenbush1985)

dataset_records <- lapply(names(DATASETS), function(nm) export_dataset(nm, DATASETS[[nm]],
                                                                         CSV_DIR))

# ---------------------------------------------------------------- helpers for the cases
cases <- list()
add <- function(case) cases[[length(cases) + 1]] <<- case

# evaluate expr, collecting its warnings (message text) instead of printing them
with_warnings <- function(expr) {
  w <- character(0)
  val <- withCallingHandlers(expr, warning = function(cond) {
    w <<- c(w, conditionMessage(cond)); invokeRestart("muffleWarning")
  })
  list(value = val, warnings = unique(w))
}
finish <- function(case, warnings) {
  if (length(warnings)) case$r_warnings <- chr(warnings)
  case
}

fit_rma <- function(yi, vi, method, mods = NULL, data = NULL, test = "z") {
  args <- list(yi = yi, vi = vi, method = method, test = test)
  if (!is.null(mods)) { args$mods <- mods; args$data <- data }
  if (method %in% ITER) args$control <- CTRL
  do.call(rma, args)
}
call_rma <- function(method, formula = NULL, test = "z") {
  sprintf("rma(yi, vi, %smethod=\"%s\"%s%s)",
          if (is.null(formula)) "" else paste0("mods=", deparse(formula), ", "), method,
          if (test == "z") "" else sprintf(", test=\"%s\"", test),
          if (method %in% ITER) paste0(", ", CTRL_S) else "")
}
fitstats_rec <- function(res) {
  f <- fitstats(res)
  list(logLik = f[1, 1], deviance = f[2, 1], AIC = f[3, 1], BIC = f[4, 1], AICc = f[5, 1])
}
predict_rec <- function(p) {
  p <- unclass(p)
  # a field metafor leaves out (se under transf, pi for rma.peto / rma.mh) -> null per row
  f <- function(x) arr(if (is.null(x)) rep(NA, length(p$pred)) else x)
  list(pred = f(p$pred), se = f(p$se), ci.lb = f(p$ci.lb), ci.ub = f(p$ci.ub),
       pi.lb = f(p$pi.lb), pi.ub = f(p$pi.ub))
}
confint_rec <- function(res) {
  if (res$method %in% c("FE", "EE")) return(NULL)
  r <- confint(res, control = list(tol = 1e-12))$random
  list(tau2 = arr(r[1, ]), tau = arr(r[2, ]), I2 = arr(r[3, ]), H2 = arr(r[4, ]))
}
# everything of one rma.uni fit; beta-type fields are named by coefficient
fit_rec <- function(res, ratio) {
  coef_names <- rownames(res$beta)
  out <- list(
    coef_names = chr(coef_names),
    estimate = arr(res$beta), se = arr(res$se), zval = arr(res$zval), pval = arr(res$pval),
    ci.lb = arr(res$ci.lb), ci.ub = arr(res$ci.ub),
    tau2 = res$tau2, se.tau2 = res$se.tau2, I2 = res$I2, H2 = res$H2,
    QE = res$QE, QEdf = res$k - res$p, QEp = res$QEp,
    QM = res$QM, QMdf = arr(res$QMdf), QMp = res$QMp,
    k = res$k, p = res$p, weights = arr(weights(res)),
    confint = confint_rec(res), fitstats = fitstats_rec(res))
  if (res$p > 1) out$R2 <- res$R2
  if (res$p == 1) {
    out$predict <- predict_rec(predict(res))
    if (ratio) out$predict_exp <- predict_rec(predict(res, transf = exp))
  }
  out
}
rma_case <- function(id, dataset, measure, yi, vi, method, ratio, formula = NULL, mods = NULL,
                     test = "z", note = NULL) {
  r <- with_warnings(fit_rma(yi, vi, method, formula, mods, test))
  input <- list(yi = arr(yi), vi = arr(vi))
  if (!is.null(mods)) input$moderators <- lapply(as.list(mods), arr)
  case <- list(
    id = id, dataset = dataset, kind = if (is.null(formula)) "rma" else "metareg",
    call = call_rma(method, formula, test), input = input,
    options = list(measure = measure, method = method, test = test,
                   formula = if (is.null(formula)) NULL else deparse(formula)),
    expected = fit_rec(r$value, ratio))
  if (!is.null(note)) case$note <- note
  add(finish(case, r$warnings))
  invisible(r$value)
}
escalc_case <- function(id, dataset, measure, call, args, input) {
  r <- with_warnings(do.call(escalc, c(list(measure = measure), args)))
  add(finish(list(id = id, dataset = dataset, kind = "escalc", call = call,
                  input = lapply(input, arr), options = list(measure = measure),
                  expected = list(yi = arr(r$value$yi), vi = arr(r$value$vi))), r$warnings))
  invisible(r$value)
}
counts_case <- function(id, dataset, kind, call, fun, counts, subset_note = NULL, ...) {
  r <- with_warnings(fun(ai = counts$ai, n1i = counts$n1i, ci = counts$ci, n2i = counts$n2i, ...))
  res <- r$value
  exp_ <- list(estimate = res$beta[1], se = res$se, zval = res$zval, pval = res$pval,
               ci.lb = res$ci.lb, ci.ub = res$ci.ub, QE = res$QE, QEp = res$QEp,
               I2 = res$I2, H2 = res$H2, k = res$k, k.yi = res$k.yi,
               predict_exp = predict_rec(predict(res, transf = exp)))
  if (!is.null(res$MH)) exp_ <- c(exp_, list(MH = res$MH, MHp = res$MHp, TA = res$TA,
                                             TAp = res$TAp))
  case <- list(id = id, dataset = dataset, kind = kind, call = call,
               input = lapply(counts, arr), options = list(measure = "OR", ...),
               expected = exp_)
  if (!is.null(subset_note)) case$subset <- subset_note
  add(finish(case, r$warnings))
}
predict_case <- function(id, dataset, res, formula, mods, newmods, newmods_s, ratio) {
  p <- predict(res, newmods = newmods)
  exp_ <- predict_rec(p)
  if (ratio) exp_ <- list(log_scale = exp_, exp = predict_rec(predict(res, newmods = newmods,
                                                                      transf = exp)))
  add(list(id = id, dataset = dataset, kind = "predict",
           call = sprintf("predict(%s, newmods=%s%s)", call_rma(res$method, formula), newmods_s,
                          if (ratio) "[, transf=exp]" else ""),
           input = list(yi = arr(res$yi), vi = arr(res$vi),
                        moderators = lapply(as.list(mods), arr)),
           options = list(method = res$method, formula = deparse(formula),
                          newmods = lapply(seq_len(NROW(newmods)), function(i)
                            arr(as.matrix(newmods)[i, ])),
                          transf = if (ratio) "exp" else NULL),
           expected = exp_))
}
lrt_case <- function(id, dataset, full, reduced, formula_f, formula_r, mods) {
  a <- anova(full, reduced)
  fs <- function(x) list(logLik = x[["ll"]], deviance = x[["dev"]], AIC = x[["AIC"]],
                         BIC = x[["BIC"]], AICc = x[["AICc"]])
  add(list(id = id, dataset = dataset, kind = "anova_lrt",
           call = sprintf("anova(%s, %s)", call_rma(full$method, formula_f),
                          call_rma(reduced$method, formula_r)),
           input = list(yi = arr(full$yi), vi = arr(full$vi),
                        moderators = lapply(as.list(mods), arr)),
           options = list(method = full$method, full = deparse(formula_f),
                          reduced = if (is.null(formula_r)) "~ 1" else deparse(formula_r)),
           expected = list(parms.f = a$parms.f, parms.r = a$parms.r, LRT = a$LRT,
                           df = a$parms.f - a$parms.r, pval = a$pval,
                           fit.f = fs(a$fit.stats.f), fit.r = fs(a$fit.stats.r),
                           QE.f = a$QE.f, QE.r = a$QE.r, tau2.f = a$tau2.f, tau2.r = a$tau2.r,
                           R2 = a$R2)))
}
wald_case <- function(id, dataset, res, formula, mods, btt = NULL) {
  a <- if (is.null(btt)) anova(res) else anova(res, btt = btt)
  add(list(id = id, dataset = dataset, kind = "anova_wald",
           call = sprintf("anova(%s%s)", call_rma(res$method, formula),
                          if (is.null(btt)) "" else paste0(", btt=", deparse(btt))),
           input = list(yi = arr(res$yi), vi = arr(res$vi),
                        moderators = lapply(as.list(mods), arr)),
           options = list(method = res$method, formula = deparse(formula),
                          btt = arr(a$btt)),
           expected = list(QM = a$QM, QMdf = arr(a$QMdf), QMp = a$QMp, btt = arr(a$btt),
                           k = a$k, p = a$p, m = a$m)))
}

# ---------------------------------------------------------------- bcg (?dat.bcg, ?rma.uni)
b <- dat.bcg
bcg <- escalc_case("bcg/escalc/RR", "bcg", "RR",
                   "escalc(measure=\"RR\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)",
                   list(ai = b$tpos, bi = b$tneg, ci = b$cpos, di = b$cneg),
                   list(tpos = b$tpos, tneg = b$tneg, cpos = b$cpos, cneg = b$cneg))
for (m in c("REML", "ML", "DL")) rma_case(paste0("bcg/RR/rma/", m), "bcg", "RR", bcg$yi,
                                          bcg$vi, m, TRUE)
rma_case("bcg/RR/rma/REML/knha", "bcg", "RR", bcg$yi, bcg$vi, "REML", TRUE, test = "knha")
mods_a <- data.frame(ablat = b$ablat)
mods_ay <- data.frame(ablat = b$ablat, year = b$year)
res_a <- list()
for (m in c("REML", "ML")) {
  res_a[[m]] <- rma_case(paste0("bcg/RR/metareg/ablat/", m), "bcg", "RR", bcg$yi, bcg$vi, m,
                         TRUE, ~ ablat, mods_a)
}
res_ay <- rma_case("bcg/RR/metareg/ablat+year/REML", "bcg", "RR", bcg$yi, bcg$vi, "REML", TRUE,
                   ~ ablat + year, mods_ay)
rma_case("bcg/RR/metareg/ablat+year/ML", "bcg", "RR", bcg$yi, bcg$vi, "ML", TRUE,
         ~ ablat + year, mods_ay)
predict_case("bcg/RR/predict/ablat/REML", "bcg", res_a$REML, ~ ablat, mods_a, c(10, 30, 50),
             "c(10, 30, 50)", TRUE)
predict_case("bcg/RR/predict/ablat+year/REML", "bcg", res_ay, ~ ablat + year, mods_ay,
             cbind(seq(from = 10, to = 60, by = 10), 1970),
             "cbind(seq(from=10, to=60, by=10), 1970)", TRUE)
ml0 <- fit_rma(bcg$yi, bcg$vi, "ML")
lrt_case("bcg/RR/anova_lrt/ablat_vs_1/ML", "bcg", res_a$ML, ml0, ~ ablat, NULL, mods_a)
ml_ay <- fit_rma(bcg$yi, bcg$vi, "ML", ~ ablat + year, mods_ay)
lrt_case("bcg/RR/anova_lrt/ablat+year_vs_ablat/ML", "bcg", ml_ay, res_a$ML, ~ ablat + year,
         ~ ablat, mods_ay)
wald_case("bcg/RR/anova_wald/ablat/REML", "bcg", res_a$REML, ~ ablat, mods_a)
wald_case("bcg/RR/anova_wald/ablat+year/REML", "bcg", res_ay, ~ ablat + year, mods_ay)
wald_case("bcg/RR/anova_wald/ablat+year/REML/btt=3", "bcg", res_ay, ~ ablat + year, mods_ay,
          btt = 3)

# ---------------------------------------------------------------- normand1999
n <- dat.normand1999
ncont <- list(m1i = n$m1i, sd1i = n$sd1i, n1i = n$n1i, m2i = n$m2i, sd2i = n$sd2i, n2i = n$n2i)
for (meas in c("MD", "SMD", "ROM")) {
  es <- escalc_case(paste0("normand1999/escalc/", meas), "normand1999", meas,
                    sprintf(paste0("escalc(measure=\"%s\", m1i=m1i, sd1i=sd1i, n1i=n1i, ",
                                   "m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)"), meas),
                    ncont, ncont)
  methods <- if (meas == "MD") c("REML", "ML") else "REML"
  for (m in methods) rma_case(sprintf("normand1999/%s/rma/%s", meas, m), "normand1999", meas,
                              es$yi, es$vi, m, meas == "ROM")
}

# ---------------------------------------------------------------- hackshaw1998 (yi, vi shipped)
h <- dat.hackshaw1998
for (m in c("DL", "REML", "ML")) rma_case(paste0("hackshaw1998/OR/rma/", m), "hackshaw1998",
                                          "OR", h$yi, h$vi, m, TRUE)

# ---------------------------------------------------------------- yusuf1985, table 6
y6 <- dat.yusuf1985[dat.yusuf1985$table == "6", ]
ycounts <- list(ai = y6$ai, n1i = y6$n1i, ci = y6$ci, n2i = y6$n2i)
counts_case("yusuf1985/peto/table6", "yusuf1985", "peto",
            "rma.peto(ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table==\"6\"))",
            rma.peto, ycounts, "table == \"6\"")
counts_case("yusuf1985/mh/OR/table6", "yusuf1985", "mh",
            paste0("rma.mh(ai=ai, n1i=n1i, ci=ci, n2i=n2i, measure=\"OR\", ",
                   "data=dat.yusuf1985, subset=(table==\"6\"))"),
            rma.mh, ycounts, "table == \"6\"")
yes <- escalc_case("yusuf1985/escalc/OR/table6", "yusuf1985", "OR",
                   paste0("escalc(measure=\"OR\", ai=ai, n1i=n1i, ci=ci, n2i=n2i, ",
                          "data=dat.yusuf1985, subset=(table==\"6\"))"),
                   ycounts, ycounts)
ok <- is.finite(yes$yi) & is.finite(yes$vi)
rma_case("yusuf1985/OR/rma/REML/table6", "yusuf1985", "OR", yes$yi[ok], yes$vi[ok], "REML", TRUE,
         note = "rows with a missing count dropped (metafor drops them with a warning)")

# ---------------------------------------------------------------- collins1985b
cb <- dat.collins1985b
pre <- list(ai = cb$pre.xti, n1i = cb$pre.nti, ci = cb$pre.xci, n2i = cb$pre.nci)
ces <- escalc_case("collins1985b/escalc/OR/pre", "collins1985b", "OR",
                   paste0("escalc(measure=\"OR\", n1i=pre.nti, n2i=pre.nci, ai=pre.xti, ",
                          "ci=pre.xci, data=dat.collins1985b)"), pre, pre)
peto_call <- function(n, x, sub = "") sprintf(
  "rma.peto(n1i=%s.nti, n2i=%s.nci, ai=%s.xti, ci=%s.xci, data=dat.collins1985b%s)",
  n, n, x, x, sub)
counts_case("collins1985b/peto/pre", "collins1985b", "peto", peto_call("pre", "pre"), rma.peto,
            pre)
s0 <- cb$oedema == 0
counts_case("collins1985b/peto/pre/oedema0", "collins1985b", "peto",
            peto_call("pre", "pre", ", subset=(oedema==0)"), rma.peto,
            lapply(pre, function(x) x[s0]), "oedema == 0")
for (o in c("ped", "stb", "ned")) {
  cnt <- list(ai = cb[[paste0(o, ".xti")]], n1i = cb$fup.nti, ci = cb[[paste0(o, ".xci")]],
              n2i = cb$fup.nci)
  counts_case(paste0("collins1985b/peto/", o), "collins1985b", "peto", peto_call("fup", o),
              rma.peto, cnt)
}
counts_case("collins1985b/mh/OR/pre", "collins1985b", "mh",
            paste0("rma.mh(n1i=pre.nti, n2i=pre.nci, ai=pre.xti, ci=pre.xci, measure=\"OR\", ",
                   "data=dat.collins1985b)"), rma.mh, pre)
rma_case("collins1985b/OR/rma/REML/pre", "collins1985b", "OR", ces$yi, ces$vi, "REML", TRUE)

# ---------------------------------------------------------------- raudenbush1985 (yi, vi shipped)
r <- dat.raudenbush1985
mods_w <- data.frame(weeks.c = ifelse(r$weeks > 3, 3, r$weeks))
for (m in c("REML", "ML")) rma_case(paste0("raudenbush1985/SMD/rma/", m), "raudenbush1985",
                                    "SMD", r$yi, r$vi, m, FALSE)
res_w <- list()
for (m in c("REML", "ML")) {
  res_w[[m]] <- rma_case(paste0("raudenbush1985/SMD/metareg/weeks.c/", m), "raudenbush1985",
                         "SMD", r$yi, r$vi, m, FALSE, ~ weeks.c, mods_w,
                         note = "weeks.c <- ifelse(weeks > 3, 3, weeks), as ?dat.raudenbush1985")
}
predict_case("raudenbush1985/SMD/predict/weeks.c/REML", "raudenbush1985", res_w$REML, ~ weeks.c,
             mods_w, 0:3, "0:3", FALSE)
lrt_case("raudenbush1985/SMD/anova_lrt/weeks.c_vs_1/ML", "raudenbush1985", res_w$ML,
         fit_rma(r$yi, r$vi, "ML"), ~ weeks.c, NULL, mods_w)
wald_case("raudenbush1985/SMD/anova_wald/weeks.c/REML", "raudenbush1985", res_w$REML, ~ weeks.c,
          mods_w)

# ---------------------------------------------------------------- write
generator <- list(
  script = "tests/reference/make_classic_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  metadat = as.character(packageVersion("metadat")),
  note = paste0(
    "The analyses of metafor's help pages for dat.bcg, dat.normand1999, dat.hackshaw1998, ",
    "dat.yusuf1985 (table 6), dat.collins1985b and dat.raudenbush1985 (data from metadat), ",
    "with ML fits and anova() added. control=list(threshold=1e-12, maxiter=10000, tol=1e-12) ",
    "for iterative tau2 estimators; confint(res, control=list(tol=1e-12)). I2, R2 and weights ",
    "in percent as metafor gives them. confint rows are [estimate, ci.lb, ci.ub]. ",
    "Doubles written with %.17g."))

write_fixture(OUT, generator, list(datasets = dataset_records, cases = cases))
nd <- length(dataset_records)
nc <- length(cases)
message("wrote ", nd, " data sets to ", CSV_DIR, " and ", nc, " cases to ", OUT)
