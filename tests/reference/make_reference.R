# make_reference.R -- reference values from R metafor for the Python `analysis` test suite.
#
# Run from the repository root:   Rscript tests/reference/make_reference.R
# Output:                         tests/reference/metafor_reference.json
#
# Format: see tests/reference/README.md (follows the fixture format spec). Every case is
# self-contained: input arrays, options, the R call (as a string) and the metafor results.
# Doubles are written with sprintf("%.17g") (jsonlite caps output at 15 significant digits,
# so a small hand-written serializer is used instead). NA / NaN / +-Inf -> null.
# Every metafor call is wrapped in tryCatch; an error is stored as expected = {"error": msg}.
# Warnings are muffled and recorded in an optional per-case field "r_warnings".

suppressPackageStartupMessages(library(metafor))
set.seed(20240521)

OUT <- file.path("tests", "reference", "metafor_reference.json")
BACLOFEN <- file.path("tests", "reference", "data", "baclofen_contrasts.csv")

# ------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------
METHODS <- c("FE", "DL", "REML", "PM", "SJ", "HE", "HS", "ML", "EB")
TESTS   <- c("z", "knha")
ITER    <- c("REML", "ML", "EB", "PM", "SJ")    # methods that get the tight control list
CTRL    <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
CTRL_S  <- "control=list(threshold=1e-12, maxiter=10000, tol=1e-12)"
CI_CTRL <- list(tol = 1e-12)                    # confint() Q-profile uniroot tolerance
CI_CTRL_S <- "confint(res, control=list(tol=1e-12))"

ctrl_for <- function(m) if (m %in% ITER) CTRL else list()
ctrl_str <- function(m) if (m %in% ITER) paste0(", ", CTRL_S) else ""
ci_name  <- function(test) if (test == "knha") "hksj" else "z"

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)[1]
arr <- function(x) I(if (is.null(x)) numeric(0) else as.numeric(x))
chr <- function(x) I(as.character(x))
arr_or_na <- function(x, k) if (is.null(x)) arr(rep(NA_real_, k)) else arr(x)

cases <- list()
run <- function(fun) {
  warns <- character(0)
  val <- tryCatch(
    withCallingHandlers(fun(), warning = function(w) {
      warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
    }),
    error = function(e) list(error = conditionMessage(e)))
  list(val = val, warns = unique(warns))
}
add_case <- function(id, dataset, kind, call, input, options, fun) {
  r <- run(fun)
  case <- list(id = id, dataset = dataset, kind = kind, call = call,
               input = input, options = options, expected = r$val)
  if (length(r$warns)) case$r_warnings <- chr(r$warns)
  cases[[length(cases) + 1]] <<- case
  if (!is.null(r$val$error)) message("ERROR in ", id, ": ", r$val$error)
  invisible(case)
}

# rma.uni fit with the tight control list for iterative estimators
fit_rma <- function(yi, vi, method, test, mods = NULL, data = NULL) {
  args <- list(yi = yi, vi = vi, method = method, test = test, level = 95)
  if (!is.null(mods)) { args$mods <- mods; args$data <- data }
  if (method %in% ITER) args$control <- CTRL
  do.call(rma, args)
}

# ------------------------------------------------------------------------------------------
# expected-value extractors
# ------------------------------------------------------------------------------------------
rma_expected <- function(res) {
  # predict(res): pi.lb/pi.ub (absent for FE models -> use the CI, as the spec says)
  p <- predict(res)
  pil <- if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb
  piu <- if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub
  # confint(res, control=list(tol=1e-12)): Q-profile CIs for tau2, I2, H2 (null for FE / failure)
  rnd <- NULL
  if (!(res$method %in% c("FE", "EE", "CE"))) {
    ci <- tryCatch(suppressWarnings(confint(res, control = CI_CTRL)), error = function(e) NULL)
    if (!is.null(ci)) rnd <- ci$random
  }
  g <- function(row, col) if (is.null(rnd)) NA_real_ else num(rnd[row, col])
  list(estimate = num(res$beta), se = num(res$se), zval = num(res$zval), pvalue = num(res$pval),
       ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
       tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
       tau2_ci_low = g("tau^2", "ci.lb"), tau2_ci_high = g("tau^2", "ci.ub"),
       i2 = num(res$I2), i2_ci_low = g("I^2(%)", "ci.lb"), i2_ci_high = g("I^2(%)", "ci.ub"),
       h2 = num(res$H2), h2_ci_low = g("H^2", "ci.lb"), h2_ci_high = g("H^2", "ci.ub"),
       q = num(res$QE), q_df = res$k - res$p, q_pvalue = num(res$QEp),
       pi_low = num(pil), pi_high = num(piu), k = res$k)
}

mh_expected <- function(res) {
  list(estimate = num(res$beta), se = num(res$se), zval = num(res$zval), pvalue = num(res$pval),
       ci_low = num(res$ci.lb), ci_high = num(res$ci.ub), q = num(res$QE), q_pvalue = num(res$QEp),
       i2 = num(res$I2), h2 = num(res$H2), k = res$k,
       mh_chisq = num(res$MH), mh_pvalue = num(res$MHp), tarone = num(res$TA), tarone_pvalue = num(res$TAp))
}

peto_expected <- function(res) {
  list(estimate = num(res$beta), se = num(res$se), zval = num(res$zval), pvalue = num(res$pval),
       ci_low = num(res$ci.lb), ci_high = num(res$ci.ub), q = num(res$QE), q_pvalue = num(res$QEp),
       i2 = num(res$I2), h2 = num(res$H2), k = res$k)
}

metareg_expected <- function(res) {
  qmdf <- if (res$test == "knha") arr(res$QMdf) else num(res$QMdf[1])
  list(coef_names = chr(rownames(res$beta)), coef = arr(res$beta), se = arr(res$se),
       zval = arr(res$zval), pvalue = arr(res$pval), ci_low = arr(res$ci.lb), ci_high = arr(res$ci.ub),
       tau2 = num(res$tau2), qm = num(res$QM), qm_df = qmdf, qm_pvalue = num(res$QMp),
       qe = num(res$QE), qe_df = res$k - res$p, qe_pvalue = num(res$QEp),
       r2 = num(res$R2), i2 = num(res$I2), h2 = num(res$H2))
}

# ------------------------------------------------------------------------------------------
# case builders (one per kind)
# ------------------------------------------------------------------------------------------
bin_input  <- function(d) list(ai = arr(d$ai), n1i = arr(d$n1i), ci = arr(d$ci), n2i = arr(d$n2i))
cont_input <- function(d) list(m1i = arr(d$m1i), sd1i = arr(d$sd1i), n1i = arr(d$n1i),
                               m2i = arr(d$m2i), sd2i = arr(d$sd2i), n2i = arr(d$n2i))

# escalc(measure, ai=, n1i=, ci=, n2i=, add=, to=, drop00=, vtype=)  /  escalc(measure, m1i=, ...)
ESC_BIN_VARIANTS <- list(
  default   = list(add = 0.5, to = "only0",  drop00 = FALSE),
  to_all    = list(add = 0.5, to = "all",    drop00 = FALSE),
  to_if0all = list(add = 0.5, to = "if0all", drop00 = FALSE),
  to_none   = list(add = 0.5, to = "none",   drop00 = FALSE),
  drop00    = list(add = 0.5, to = "only0",  drop00 = TRUE),
  add0      = list(add = 0,   to = "only0",  drop00 = FALSE))

escalc_bin_cases <- function(ds, d, measures = c("OR", "RR", "RD")) {
  for (m in measures) for (vn in names(ESC_BIN_VARIANTS)) {
    v <- ESC_BIN_VARIANTS[[vn]]
    call <- sprintf("escalc('%s', ai=ai, n1i=n1i, ci=ci, n2i=n2i, add=%s, to='%s', drop00=%s, vtype='LS')",
                    m, format(v$add), v$to, v$drop00)
    add_case(sprintf("%s/escalc/%s/%s", ds, m, vn), ds, "escalc", call, bin_input(d),
             list(measure = m, add = v$add, to = v$to, drop00 = v$drop00, vtype = "LS"),
             function() {
               e <- escalc(m, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i,
                           add = v$add, to = v$to, drop00 = v$drop00, vtype = "LS")
               list(yi = arr(e$yi), vi = arr(e$vi))
             })
  }
}

escalc_cont_cases <- function(ds, d) {
  for (mv in list(c("MD", "LS"), c("SMD", "LS"), c("SMD", "UB"))) {
    m <- mv[1]; vt <- mv[2]
    call <- sprintf("escalc('%s', m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, vtype='%s')", m, vt)
    add_case(sprintf("%s/escalc/%s/%s", ds, m, vt), ds, "escalc", call, cont_input(d),
             list(measure = m, add = 0.5, to = "only0", drop00 = FALSE, vtype = vt),
             function() {
               e <- escalc(m, m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
                           m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i, vtype = vt)
               list(yi = arr(e$yi), vi = arr(e$vi))
             })
  }
}

# rma(yi, vi, method=, test=, control=...) + predict(res) + confint(res)
rma_cases <- function(ds, measure, yi, vi, methods = METHODS, tests = TESTS, prefix = NULL) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok])
  pre <- if (is.null(prefix)) sprintf("%s/%s", ds, measure) else prefix
  for (m in methods) for (t in tests) {
    call <- sprintf("res <- rma(yi, vi, method='%s', test='%s'%s); predict(res); %s",
                    m, t, ctrl_str(m), CI_CTRL_S)
    add_case(sprintf("%s/%s/%s", pre, m, ci_name(t)), ds, "rma", call,
             list(yi = arr(yi), vi = arr(vi)), list(method = m, test = t, level = 95),
             function() rma_expected(fit_rma(yi, vi, m, t)))
  }
}

# rma.mh(ai=, n1i=, ci=, n2i=, measure=, correct=TRUE)   (defaults add=1/2, to="only0", drop00=TRUE)
mh_cases <- function(ds, d) {
  for (m in c("OR", "RR", "RD")) {
    add_case(sprintf("%s/mh/%s", ds, m), ds, "mh",
             sprintf("rma.mh(ai=ai, n1i=n1i, ci=ci, n2i=n2i, measure='%s', correct=TRUE)", m),
             bin_input(d), list(measure = m, correct = TRUE),
             function() mh_expected(rma.mh(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i,
                                           measure = m, correct = TRUE)))
  }
}

# rma.peto(ai=, n1i=, ci=, n2i=)   (defaults add=1/2, to="only0", drop00=TRUE)
peto_cases <- function(ds, d) {
  add_case(sprintf("%s/peto", ds), ds, "peto", "rma.peto(ai=ai, n1i=n1i, ci=ci, n2i=n2i)",
           bin_input(d), list(),
           function() peto_expected(rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)))
}

# subgroup analysis
#  separate: res_g <- rma(yi, vi, subset=group==g, method, test) per group (factor level order),
#            then rma(est, sei=se, mods=~factor(grp), method='FE') -> QM, QMdf, QMp
#  common:   rma(yi, vi, mods=~factor(group)-1, method, test) -> per-group estimates,
#            rma(yi, vi, mods=~factor(group), method, test)   -> qb = QM (F for knha)
subgroup_cases <- function(ds, measure, yi, vi, group, gname, methods = METHODS, tests = TESTS) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok]); group <- as.character(group[ok])
  lev <- sort(unique(group))
  for (m in methods) for (t in tests) for (tt in c("separate", "common")) {
    if (tt == "separate") {
      call <- sprintf(paste0("for g in levels: rma(yi, vi, subset=group==g, method='%s', test='%s'%s); ",
                             "rma(est, sei=se, mods=~factor(groups), method='FE')"), m, t, ctrl_str(m))
      fun <- function() {
        fits <- lapply(lev, function(g) fit_rma(yi[group == g], vi[group == g], m, t))
        est <- sapply(fits, function(f) num(f$beta)); se <- sapply(fits, function(f) num(f$se))
        grp <- factor(lev, levels = lev)
        comb <- rma(est, sei = se, mods = ~ grp, method = "FE")
        list(groups = chr(lev), estimate = arr(est), se = arr(se),
             ci_low = arr(sapply(fits, function(f) num(f$ci.lb))),
             ci_high = arr(sapply(fits, function(f) num(f$ci.ub))),
             tau2 = arr(sapply(fits, function(f) num(f$tau2))),
             k = arr(sapply(fits, function(f) f$k)),
             qb = num(comb$QM), qb_df = num(comb$QMdf[1]), qb_pvalue = num(comb$QMp))
      }
    } else {
      call <- sprintf(paste0("rma(yi, vi, mods=~factor(group)-1, method='%s', test='%s'%s); ",
                             "rma(yi, vi, mods=~factor(group), method='%s', test='%s'%s)"),
                      m, t, ctrl_str(m), m, t, ctrl_str(m))
      fun <- function() {
        dd <- data.frame(group = factor(group, levels = lev))
        r0 <- fit_rma(yi, vi, m, t, mods = ~ group - 1, data = dd)
        r1 <- fit_rma(yi, vi, m, t, mods = ~ group, data = dd)
        qbdf <- if (t == "knha") arr(r1$QMdf) else num(r1$QMdf[1])
        list(groups = chr(lev), estimate = arr(r0$beta), se = arr(r0$se),
             ci_low = arr(r0$ci.lb), ci_high = arr(r0$ci.ub),
             tau2 = arr(rep(r0$tau2, length(lev))),
             k = arr(as.numeric(table(dd$group))),
             qb = num(r1$QM), qb_df = qbdf, qb_pvalue = num(r1$QMp))
      }
    }
    add_case(sprintf("%s/%s/subgroup/%s/%s/%s/%s", ds, measure, gname, tt, m, ci_name(t)), ds, "subgroup",
             call, list(yi = arr(yi), vi = arr(vi), group = chr(group)),
             list(method = m, tau2 = tt, test = t), fun)
  }
}

# meta-regression: rma(yi, vi, mods=<formula>, data=moderators, method=, test=, control=...)
metareg_cases <- function(ds, measure, yi, vi, modframe, formulas, methods = METHODS, tests = TESTS) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok]); modframe <- modframe[ok, , drop = FALSE]
  for (f in formulas) {
    vars <- all.vars(as.formula(f))
    mods_in <- lapply(vars, function(v) if (is.character(modframe[[v]])) chr(modframe[[v]]) else arr(modframe[[v]]))
    names(mods_in) <- vars
    fid <- gsub(" ", "", sub("^~", "", f))
    for (m in methods) for (t in tests) {
      call <- sprintf("rma(yi, vi, mods=%s, method='%s', test='%s'%s)", f, m, t, ctrl_str(m))
      add_case(sprintf("%s/%s/metareg/%s/%s/%s", ds, measure, fid, m, ci_name(t)), ds, "metareg", call,
               list(yi = arr(yi), vi = arr(vi), moderators = mods_in),
               list(method = m, test = t, formula = f),
               function() metareg_expected(fit_rma(yi, vi, m, t, mods = as.formula(f), data = modframe)))
    }
  }
}

# Egger: regtest(rma(yi, vi, method=, test=), model='lm'|'rma', predictor='sei')
#  model='lm': classical weighted lm Egger test (independent of the fitted method/test; method 'FE' recorded)
#  model='rma': mixed-effects version; it inherits method and test of the fit, so test='knha' gives a t test
#  (options.test is an addition to the spec: 'z' for all spec'd cases, 'knha' for the extra t-test cases)
egger_cases <- function(ds, measure, yi, vi, methods = METHODS, knha_methods = c("REML", "DL")) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok])
  specs <- c(list(c("lm", "FE", "z")), lapply(methods, function(m) c("rma", m, "z")),
             lapply(intersect(knha_methods, methods), function(m) c("rma", m, "knha")))
  for (s in specs) {
    model <- s[1]; m <- s[2]; t <- s[3]
    call <- sprintf("regtest(rma(yi, vi, method='%s', test='%s'%s), model='%s', predictor='sei')",
                    m, t, ctrl_str(m), model)
    id <- if (model == "lm") sprintf("%s/%s/egger/lm", ds, measure)
          else if (t == "z") sprintf("%s/%s/egger/rma/%s", ds, measure, m)
          else sprintf("%s/%s/egger/rma/%s/hksj", ds, measure, m)
    add_case(id, ds, "egger", call, list(yi = arr(yi), vi = arr(vi)),
             list(model = model, method = m, test = t),
             function() {
               rt <- regtest(fit_rma(yi, vi, m, t), model = model, predictor = "sei")
               list(zval = num(rt$zval), pvalue = num(rt$pval), df = num(rt$dfs),
                    est = num(rt$est), ci_low = num(rt$ci.lb), ci_high = num(rt$ci.ub))
             })
  }
}

# trim and fill: trimfill(rma(yi, vi, method='FE'|'REML'), estimator='L0')
trimfill_cases <- function(ds, measure, yi, vi, methods = c("FE", "REML")) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok])
  for (m in methods) {
    call <- sprintf("trimfill(rma(yi, vi, method='%s'%s), estimator='L0')", m, ctrl_str(m))
    add_case(sprintf("%s/%s/trimfill/%s", ds, measure, m), ds, "trimfill", call,
             list(yi = arr(yi), vi = arr(vi)), list(method = m, estimator = "L0"),
             function() {
               tf <- trimfill(fit_rma(yi, vi, m, "z"), estimator = "L0")
               fill <- if (is.null(tf$fill)) rep(FALSE, length(tf$yi)) else tf$fill
               list(k0 = num(tf$k0), side = tf$side, estimate = num(tf$beta), se = num(tf$se),
                    ci_low = num(tf$ci.lb), ci_high = num(tf$ci.ub), tau2 = num(tf$tau2),
                    k_total = tf$k, filled_yi = arr(tf$yi[fill]), filled_vi = arr(tf$vi[fill]))
             })
  }
}

# leave-one-out: leave1out(rma(yi, vi, method=, test=, control=...))
leave1out_cases <- function(ds, measure, yi, vi, methods = METHODS, tests = TESTS) {
  ok <- is.finite(yi) & is.finite(vi)
  yi <- as.numeric(yi[ok]); vi <- as.numeric(vi[ok]); k <- length(yi)
  for (m in methods) for (t in tests) {
    call <- sprintf("leave1out(rma(yi, vi, method='%s', test='%s'%s))", m, t, ctrl_str(m))
    add_case(sprintf("%s/%s/leave1out/%s/%s", ds, measure, m, ci_name(t)), ds, "leave1out", call,
             list(yi = arr(yi), vi = arr(vi)), list(method = m, test = t),
             function() {
               l <- leave1out(fit_rma(yi, vi, m, t))
               list(estimate = arr_or_na(l$estimate, k), se = arr_or_na(l$se, k), zval = arr_or_na(if (is.null(l$zval)) l$tval else l$zval, k),
                    pvalue = arr_or_na(l$pval, k), ci_low = arr_or_na(l$ci.lb, k), ci_high = arr_or_na(l$ci.ub, k),
                    q = arr_or_na(l$Q, k), q_pvalue = arr_or_na(l$Qp, k), tau2 = arr_or_na(l$tau2, k),
                    i2 = arr_or_na(l$I2, k), h2 = arr_or_na(l$H2, k))
             })
  }
}

# default escalc (add=1/2, to='only0', drop00=FALSE) -> yi, vi used as input to rma & co.
esc_bin  <- function(d, m) escalc(m, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)
esc_cont <- function(d, m) escalc(m, m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
                                  m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)

# ==========================================================================================
# TEXTBOOK DATASETS (metadat, shipped with metafor)
# ==========================================================================================
tb <- list()
# dat.bcg: ai=tpos, n1i=tpos+tneg, ci=cpos, n2i=cpos+cneg; moderators ablat, year, alloc
tb$bcg <- with(dat.bcg, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg,
                                   ablat = ablat, year = year, alloc = as.character(alloc),
                                   stringsAsFactors = FALSE))
tb$colditz1994 <- with(dat.colditz1994, data.frame(ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg,
                                   ablat = ablat, year = year, alloc = as.character(alloc),
                                   stringsAsFactors = FALSE))
tb$egger2001 <- with(dat.egger2001, data.frame(ai = ai, n1i = n1i, ci = ci, n2i = n2i))
# dat.yusuf1985: one subset, table == "6" (the subset used in metafor's help example)
tb$yusuf1985 <- with(subset(dat.yusuf1985, table == "6"), data.frame(ai = ai, n1i = n1i, ci = ci, n2i = n2i))
tb$hine1989 <- with(dat.hine1989, data.frame(ai = ai, n1i = n1i, ci = ci, n2i = n2i))
# dat.collins1985b: pre-eclampsia columns (pre.xti/pre.nti vs pre.xci/pre.nci)
tb$collins1985b <- with(dat.collins1985b, data.frame(ai = pre.xti, n1i = pre.nti, ci = pre.xci, n2i = pre.nci))
tb$normand1999 <- with(dat.normand1999, data.frame(m1i = m1i, sd1i = sd1i, n1i = n1i,
                                                   m2i = m2i, sd2i = sd2i, n2i = n2i))
for (nm in names(tb)) if (!is.null(tb[[nm]]$ai)) tb[[nm]] <- tb[[nm]][complete.cases(tb[[nm]][, c("ai", "n1i", "ci", "n2i")]), ]

# --- binary textbook datasets: escalc (all variants) + rma (OR, RR, RD x methods x tests) + mh + peto
for (ds in c("bcg", "colditz1994", "egger2001", "yusuf1985", "hine1989", "collins1985b")) {
  d <- tb[[ds]]
  escalc_bin_cases(ds, d)
  for (m in c("OR", "RR", "RD")) { e <- esc_bin(d, m); rma_cases(ds, m, e$yi, e$vi) }
  mh_cases(ds, d)
  peto_cases(ds, d)
}
# --- normand1999: escalc MD / SMD(LS) / SMD(UB); rma on MD and SMD (default vtype LS)
escalc_cont_cases("normand1999", tb$normand1999)
for (m in c("MD", "SMD")) { e <- esc_cont(tb$normand1999, m); rma_cases("normand1999", m, e$yi, e$vi) }
# --- hackshaw1998: yi / vi as given in the dataset (log OR)
rma_cases("hackshaw1998", "OR", dat.hackshaw1998$yi, dat.hackshaw1998$vi)

# primary (yi, vi) per textbook dataset for the secondary analyses
prim <- list(
  list("bcg", "RR", esc_bin(tb$bcg, "RR")), list("bcg", "OR", esc_bin(tb$bcg, "OR")),
  list("colditz1994", "RR", esc_bin(tb$colditz1994, "RR")),
  list("egger2001", "OR", esc_bin(tb$egger2001, "OR")),
  list("yusuf1985", "OR", esc_bin(tb$yusuf1985, "OR")),
  list("hine1989", "RD", esc_bin(tb$hine1989, "RD")),
  list("collins1985b", "OR", esc_bin(tb$collins1985b, "OR")),
  list("normand1999", "MD", esc_cont(tb$normand1999, "MD")),
  list("normand1999", "SMD", esc_cont(tb$normand1999, "SMD")),
  list("hackshaw1998", "OR", data.frame(yi = dat.hackshaw1998$yi, vi = dat.hackshaw1998$vi)))

# --- leave1out and egger for every primary (dataset, measure)
for (p in prim) {
  leave1out_cases(p[[1]], p[[2]], p[[3]]$yi, p[[3]]$vi)
  egger_cases(p[[1]], p[[2]], p[[3]]$yi, p[[3]]$vi)
}
# egger on dat.egger2001 without ISIS-4 (regtest(..., subset=-16) example in metafor's docs)
e <- esc_bin(tb$egger2001, "OR")
egger_cases("egger2001_noISIS4", "OR", e$yi[-16], e$vi[-16])
# --- trimfill (FE and REML fits)
for (p in prim) trimfill_cases(p[[1]], p[[2]], p[[3]]$yi, p[[3]]$vi)

# --- subgroups: bcg by alloc (RR, OR), colditz by alloc, hackshaw by design
for (m in c("RR", "OR")) { e <- esc_bin(tb$bcg, m); subgroup_cases("bcg", m, e$yi, e$vi, tb$bcg$alloc, "alloc") }
e <- esc_bin(tb$colditz1994, "RR"); subgroup_cases("colditz1994", "RR", e$yi, e$vi, tb$colditz1994$alloc, "alloc")
subgroup_cases("hackshaw1998", "OR", dat.hackshaw1998$yi, dat.hackshaw1998$vi,
               as.character(dat.hackshaw1998$design), "design")

# --- meta-regression: bcg RR/OR and colditz RR: ~ablat, ~ablat+year, ~alloc (categorical)
FORMS <- c("~ ablat", "~ ablat + year", "~ alloc")
for (m in c("RR", "OR")) {
  e <- esc_bin(tb$bcg, m)
  metareg_cases("bcg", m, e$yi, e$vi, tb$bcg[, c("ablat", "year", "alloc")], FORMS)
}
e <- esc_bin(tb$colditz1994, "RR")
metareg_cases("colditz1994", "RR", e$yi, e$vi, tb$colditz1994[, c("ablat", "year", "alloc")], FORMS)

# ==========================================================================================
# GENERATED DATASETS (set.seed above; each generator also sets its own seed)
# ==========================================================================================
gen_bin <- function(seed, k, nmin, nmax, pc, lor, tau, n2mult = 1) {
  set.seed(seed)
  n1i <- sample(nmin:nmax, k, replace = TRUE)
  n2i <- round(n2mult * sample(nmin:nmax, k, replace = TRUE))
  th <- lor + rnorm(k, 0, tau)
  pt <- plogis(qlogis(pc) + th)
  data.frame(ai = rbinom(k, n1i, pt), n1i = n1i, ci = rbinom(k, n2i, pc), n2i = n2i)
}
gen_cont <- function(seed, k, nmin, nmax, md, tau, sd = 1, dec = 2) {
  set.seed(seed)
  n1i <- sample(nmin:nmax, k, replace = TRUE); n2i <- sample(nmin:nmax, k, replace = TRUE)
  th <- md + rnorm(k, 0, tau)
  x1 <- lapply(seq_len(k), function(i) rnorm(n1i[i], th[i], sd))
  x2 <- lapply(seq_len(k), function(i) rnorm(n2i[i], 0, sd))
  data.frame(m1i = round(sapply(x1, mean), dec), sd1i = round(sapply(x1, sd), dec), n1i = n1i,
             m2i = round(sapply(x2, mean), dec), sd2i = round(sapply(x2, sd), dec), n2i = n2i)
}
# publication-biased continuous data: small studies are kept mostly when their effect is large
# and positive -> excess of small studies on the RIGHT of the funnel (trimfill fills on the left)
gen_asym <- function(seed, nstud = 22) {
  set.seed(seed)
  rows <- list()
  while (length(rows) < nstud) {
    n <- sample(c(4:30, 50, 80, 150, 300), 1)
    x1 <- rnorm(n, 0.3, 1); x2 <- rnorm(n, 0, 1)
    z <- (mean(x1) - mean(x2)) / sqrt(var(x1) / n + var(x2) / n)
    if (z > 1.645 || n >= 50 || runif(1) < 0.1)
      rows[[length(rows) + 1]] <- data.frame(m1i = round(mean(x1), 3), sd1i = round(sd(x1), 3), n1i = n,
                                             m2i = round(mean(x2), 3), sd2i = round(sd(x2), 3), n2i = n)
  }
  do.call(rbind, rows)
}

gen <- list()
gen$gen_zero_cells     <- within(gen_bin(101, 8, 20, 60, 0.08, -0.5, 0.3), { ai[2] <- 0; ci[5] <- 0; ai[7] <- 0 })
gen$gen_double_zero    <- within(gen_bin(102, 7, 30, 80, 0.03, -0.3, 0.2), { ai[3] <- 0; ci[3] <- 0; ai[6] <- 0; ci[6] <- 0; ci[1] <- 0 })
gen$gen_k2_bin         <- gen_bin(103, 2, 50, 150, 0.2, -0.4, 0.3)
# k = 3 with Q < df (nearly proportional tables) -> DL tau2 = 0
gen$gen_k3_qltdf_bin   <- data.frame(ai = c(10, 21, 30), n1i = c(100, 200, 300), ci = c(20, 39, 61), n2i = c(100, 200, 300))
# exact homogeneity: identical proportions in every study -> identical OR, RR, RD; Q = 0
gen$gen_homog_exact    <- data.frame(ai = c(5, 10, 20, 40), n1i = c(50, 100, 200, 400), ci = c(10, 20, 40, 80), n2i = c(50, 100, 200, 400))
gen$gen_large_k100     <- gen_bin(104, 100, 50, 500, 0.2, -0.3, 0.25)
gen$gen_unequal_arms   <- gen_bin(105, 6, 20, 40, 0.15, -0.6, 0.2, n2mult = 10)
gen$gen_k1_bin         <- data.frame(ai = 12, n1i = 80, ci = 20, n2i = 82)
gen$gen_rare_events    <- gen_bin(106, 15, 100, 300, 0.01, -0.2, 0.1)
gen$gen_high_het_bin   <- gen_bin(107, 10, 40, 200, 0.25, -0.2, 1.0)
gen$gen_zero_control_all <- within(gen_bin(108, 5, 30, 60, 0.05, 0.8, 0.2), { ci[] <- 0 })
gen$gen_full_cells     <- within(gen_bin(109, 6, 10, 30, 0.7, 0.5, 0.3), { ai[2] <- n1i[2]; ci[4] <- n2i[4]; ai[5] <- n1i[5] })
gen$gen_k4_bin         <- gen_bin(110, 4, 40, 120, 0.3, -0.5, 0.4)
gen$gen_big_n          <- gen_bin(111, 8, 5000, 50000, 0.05, -0.15, 0.1)
gen$gen_boundary_bin   <- gen_bin(112, 6, 80, 200, 0.2, -0.3, 0.12)
gen$gen_cont_small_n   <- gen_cont(201, 6, 3, 6, 0.8, 0.3)
gen$gen_cont_md_het    <- gen_cont(202, 12, 15, 80, 0.5, 0.6, sd = 2)
gen$gen_cont_k30       <- gen_cont(203, 30, 10, 120, 0.3, 0.25)
gen$gen_smd_large      <- gen_cont(204, 8, 8, 20, 2.0, 0.4)
gen$gen_k2_cont        <- gen_cont(205, 2, 20, 60, 0.4, 0.2)
gen$gen_k3_cont_qltdf  <- data.frame(m1i = c(10.1, 10.3, 9.9), sd1i = c(2, 2.1, 1.9), n1i = c(40, 50, 45),
                                     m2i = c(9.6, 9.8, 9.45), sd2i = c(2.1, 2, 2), n2i = c(42, 48, 44))
# n from 4 to 5000 per arm: ratio of sampling variances ~ 1000
gen$gen_extreme_vi     <- rbind(gen_cont(206, 4, 4, 6, 0.5, 0.5), gen_cont(207, 3, 3000, 5000, 0.2, 0.05))
gen$gen_asym_right     <- gen_asym(301)
gen$gen_asym_left      <- with(gen_asym(302), data.frame(m1i = m2i, sd1i = sd2i, n1i = n2i,
                                                          m2i = m1i, sd2i = sd1i, n2i = n1i))
gen$gen_k1_cont        <- gen_cont(208, 1, 20, 40, 0.5, 0)

# REML non-convergence with the default maxiter (100): search a bounded set of seeds on
# extreme (yi, vi) configurations; if found, rma cases are stored with DEFAULT control
# (the error is the expected value). Deterministic (fixed seeds).
nonconv <- NULL
for (s in 1:300) {
  set.seed(10000 + s)
  kk <- sample(3:6, 1); vi0 <- 10^runif(kk, -8, 6); yi0 <- rnorm(kk) * 10^runif(kk, -2, 4)
  r <- tryCatch(suppressWarnings(rma(yi0, vi0, method = "REML")), error = function(e) e)
  if (inherits(r, "error") && grepl("converge", conditionMessage(r))) { nonconv <- list(yi = yi0, vi = vi0, seed = 10000 + s); break }
}
if (!is.null(nonconv)) {
  for (t in TESTS) {
    add_case(sprintf("gen_reml_nonconv/yi/REML_default_control/%s", ci_name(t)), "gen_reml_nonconv", "rma",
             sprintf("res <- rma(yi, vi, method='REML', test='%s')  # default control (maxiter=100)", t),
             list(yi = arr(nonconv$yi), vi = arr(nonconv$vi)), list(method = "REML", test = t, level = 95),
             function() rma_expected(rma(nonconv$yi, nonconv$vi, method = "REML", test = t)))
  }
  rma_cases("gen_reml_nonconv", "yi", nonconv$yi, nonconv$vi)
}

for (ds in names(gen)) {
  d <- gen[[ds]]
  if (!is.null(d$ai)) {
    escalc_bin_cases(ds, d)
    for (m in c("OR", "RR", "RD")) { e <- esc_bin(d, m); rma_cases(ds, m, e$yi, e$vi) }
    mh_cases(ds, d)
    peto_cases(ds, d)
  } else {
    escalc_cont_cases(ds, d)
    for (m in c("MD", "SMD")) { e <- esc_cont(d, m); rma_cases(ds, m, e$yi, e$vi) }
  }
}

# secondary analyses on generated data
for (ds in c("gen_asym_right", "gen_asym_left", "gen_cont_k30", "gen_cont_md_het")) {
  for (m in c("MD", "SMD")) {
    e <- esc_cont(gen[[ds]], m)
    trimfill_cases(ds, m, e$yi, e$vi)
    egger_cases(ds, m, e$yi, e$vi, methods = c("FE", "DL", "REML"))
  }
}
for (ds in c("gen_zero_cells", "gen_large_k100")) {
  e <- esc_bin(gen[[ds]], "OR")
  trimfill_cases(ds, "OR", e$yi, e$vi)
  egger_cases(ds, "OR", e$yi, e$vi, methods = c("FE", "DL", "REML"))
}
for (ds in c("gen_k2_bin", "gen_k3_qltdf_bin", "gen_zero_cells", "gen_high_het_bin")) {
  e <- esc_bin(gen[[ds]], "OR"); leave1out_cases(ds, "OR", e$yi, e$vi)
}
leave1out_cases("gen_cont_small_n", "SMD", esc_cont(gen$gen_cont_small_n, "SMD")$yi, esc_cont(gen$gen_cont_small_n, "SMD")$vi)
# subgroup / metareg on generated data with a continuous and a categorical moderator
set.seed(401)
mf30 <- data.frame(x = round(runif(30, 0, 10), 2), grp = sample(c("a", "b", "c"), 30, replace = TRUE),
                   stringsAsFactors = FALSE)
# (moderators are generated independently of the effects)
e <- esc_cont(gen$gen_cont_k30, "SMD")
subgroup_cases("gen_cont_k30", "SMD", e$yi, e$vi, mf30$grp, "grp")
metareg_cases("gen_cont_k30", "SMD", e$yi, e$vi, mf30, c("~ x", "~ x + grp", "~ grp"))
set.seed(402)
grp100 <- sample(c("g1", "g2", "g3", "g4"), 100, replace = TRUE)
e <- esc_bin(gen$gen_large_k100, "OR")
subgroup_cases("gen_large_k100", "OR", e$yi, e$vi, grp100, "grp", methods = c("FE", "DL", "REML"))

# ==========================================================================================
# extreme variance ratio (found in review): two near-exact studies, one very imprecise; the
# REML/ML score is steep near tau^2 = 0, where a solver with an absolute step tolerance stops
# early (tau^2 ~ 5e-9 instead of ~0.099 for REML)
# ==========================================================================================
rma_cases("gen_tiny_vi", "yi", c(.1, .5, -.2, .8), c(1e-8, 1e-8, .05, 1e3))

# ==========================================================================================
# BACLOFEN contrasts (only if the lead has produced the file): rma for every outcome
# ==========================================================================================
if (file.exists(BACLOFEN)) {
  bac <- read.csv(BACLOFEN, stringsAsFactors = FALSE)
  for (o in unique(bac$outcome)) {
    b <- bac[bac$outcome == o, ]
    rma_cases("baclofen", o, b$yi, b$vi, prefix = sprintf("baclofen/%s", o))
    # escalc from the 2x2 counts the Python contrasts() used (rows with counts only; a
    # comparison from a reported estimate has none), so yi/vi themselves are checked too
    counted <- b[!is.na(b$ai), ]
    if (nrow(counted) > 0) {
      escalc_bin_cases(sprintf("baclofen/%s", o), counted, measures = counted$measure[1])
    }
  }
}

# ==========================================================================================
# JSON writer (full double precision, %.17g)
# ==========================================================================================
source(file.path("tests", "reference", "json_writer.R"))

ids <- vapply(cases, function(cc) cc$id, "")
if (anyDuplicated(ids)) stop("duplicate case ids: ", paste(ids[duplicated(ids)], collapse = ", "))

generator <- list(
  script = "tests/reference/make_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  note = paste0(
    "rma(): control=list(threshold=1e-12, maxiter=10000, tol=1e-12) for REML/ML/EB/PM/SJ ",
    "(none for FE/DL/HE/HS); confint(res, control=list(tol=1e-12)) for the Q-profile tau2/I2/H2 CIs; ",
    "level=95; metafor method 'FE' (== EE); test 'knha' == our ci 'hksj'. ",
    "escalc/rma.mh/rma.peto use metafor defaults unless listed in options. ",
    "rma inputs are the default escalc (add=1/2, to='only0', drop00=FALSE) with non-finite rows removed. ",
    "I2 and R2 are in percent (metafor). NA/NaN/Inf -> null. Doubles written with %.17g."))

write_fixture(OUT, generator, list(cases = cases))
n <- length(cases)

kinds <- table(vapply(cases, function(cc) cc$kind, ""))
message("wrote ", n, " cases to ", OUT)
print(kinds)
