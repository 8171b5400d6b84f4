# make_model_reference.R -- reference values of metafor's model interface for
# tests/test_model_interface.py: formula moderators (rma(yi, vi, mods = ~ ..., data = dat)),
# sei=, predict(newmods=, transf=exp), confint() (random and fixed), fitstats() under ML, REML
# and FE for rma() with and without moderators, and anova() (LRT, Wald btt=, X= combinations).
#
# Run from the repository root:   Rscript tests/reference/make_model_reference.R
# Output:                         tests/reference/model_reference.json
#
# Deterministic (no random numbers). The data sets are written at full precision ("datasets":
# column name -> values, NA -> null), every fit names its data set, its formula (the same
# string is given to analysis.meta_regression), method and test. Doubles are written with
# sprintf("%.17g") by the shared writer json_writer.R. ML/REML fits use
# control=list(threshold=1e-12, maxiter=10000, tol=1e-12).

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "model_reference.json")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)

arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))

bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg$study <- paste(bcg$author, bcg$year)
bd <- dat.bangertdrowns2004
bd$study <- make.unique(paste(bd$author, bd$year))  # metafor makes slab unique so

data_sets <- list(bcg = bcg, bd2004 = bd)
columns <- list(bcg = c("study", "yi", "vi", "ablat", "year", "alloc"),
                bd2004 = c("study", "yi", "vi", "grade", "length", "meta", "wic"))
datasets_json <- lapply(names(data_sets), function(nm) {
  d <- data_sets[[nm]]
  out <- lapply(columns[[nm]], function(col) {
    x <- d[[col]]
    if (is.character(x)) chr(x) else arr(x)
  })
  names(out) <- columns[[nm]]
  out
})
names(datasets_json) <- names(data_sets)

fit_rma <- function(dataset, formula, method, test, sei = FALSE) {
  d <- data_sets[[dataset]]
  args <- list(method = method, test = test, data = d, slab = d$study)
  if (sei) args$sei <- sqrt(d$vi) else args$vi <- d$vi
  args$yi <- d$yi
  if (!is.null(formula)) args$mods <- as.formula(formula)
  if (method %in% c("ML", "REML")) args$control <- CTRL
  suppressWarnings(do.call(rma, args))
}

fitstats_of <- function(res) {
  fs <- fitstats(res)
  list(loglik = as.numeric(logLik(res)), deviance = as.numeric(deviance(res)),
       aic = as.numeric(AIC(res)), bic = as.numeric(BIC(res)), aicc = fs["AICc:", 1])
}

confint_of <- function(res) {
  if (res$method == "FE") return(NULL)
  ci <- confint(res, control = list(tol = 1e-12))$random   # Q-profile uniroot tolerance
  list(estimate = arr(ci[, "estimate"]), ci_low = arr(ci[, "ci.lb"]),
       ci_high = arr(ci[, "ci.ub"]), rows = chr(c("tau2", "tau", "i2", "h2")))
}

pred_of <- function(p, transf = FALSE) {
  out <- list(pred = arr(p$pred), ci_low = arr(p$ci.lb), ci_high = arr(p$ci.ub),
              pi_low = arr(p$pi.lb), pi_high = arr(p$pi.ub))
  if (!transf) out$se <- arr(p$se)
  out
}

fits <- list()
models <- list()
add_fit <- function(id, dataset, formula, method, test, sei = FALSE, newmods = NULL) {
  res <- fit_rma(dataset, formula, method, test, sei)
  models[[id]] <<- res
  out <- list(
    id = id, dataset = dataset, formula = formula, method = method, test = test, sei = sei,
    call = sprintf("rma(yi, %s, %smethod='%s', test='%s', data=%s)",
                   if (sei) "sei=sqrt(vi)" else "vi",
                   if (is.null(formula)) "" else paste0("mods=", formula, ", "),
                   method, test, dataset),
    k = res$k, study = chr(res$slab[res$not.na]),
    coef_names = chr(rownames(res$beta)), coef = arr(res$beta), se = arr(res$se),
    ci_low = arr(res$ci.lb), ci_high = arr(res$ci.ub), tau2 = res$tau2,
    qm = res$QM, qm_df = arr(na.omit(res$QMdf)), qm_pvalue = res$QMp, qe = res$QE,
    fitstats = fitstats_of(res), confint = confint_of(res),
    confint_fixed = list(estimate = arr(res$beta), ci_low = arr(res$ci.lb),
                         ci_high = arr(res$ci.ub)),
    fitted = pred_of(predict(res)))
  if (!is.null(newmods)) {
    out$newmods <- lapply(seq_len(nrow(newmods)), function(i) arr(newmods[i, ]))
    out$predict <- pred_of(predict(res, newmods = newmods))
    out$predict_exp <- pred_of(predict(res, newmods = newmods, transf = exp), TRUE)
  }
  if (is.null(formula)) {
    out$predict <- pred_of(predict(res))
    out$predict_exp <- pred_of(predict(res, transf = exp), TRUE)
  }
  fits[[length(fits) + 1]] <<- out
}

one <- function(...) cbind(c(...))      # newmods for one moderator (a vector in metafor)
for (m in c("REML", "ML", "FE")) for (t in c("z", "knha")) {
  tag <- sprintf("%s/%s", m, t)
  add_fit(paste0("bcg/pool/", tag), "bcg", NULL, m, t)
  add_fit(paste0("bcg/ablat/", tag), "bcg", "~ ablat", m, t, newmods = one(10, 30, 50))
  add_fit(paste0("bcg/ablat+alloc/", tag), "bcg", "~ ablat + factor(alloc)", m, t,
          newmods = rbind(c(10, 0, 1), c(30, 1, 0), c(50, 0, 0)))
  add_fit(paste0("bd2004/pool/", tag), "bd2004", NULL, m, t)
  add_fit(paste0("bd2004/length/", tag), "bd2004", "~ length", m, t,
          newmods = one(1, 10, 20))
  add_fit(paste0("bd2004/grade+length/", tag), "bd2004", "~ factor(grade) + length", m, t,
          newmods = rbind(c(0, 0, 1, 5), c(1, 0, 0, 15)))
}
for (t in c("z", "knha")) {
  add_fit(paste0("bcg/ablat*alloc/REML/", t), "bcg", "~ ablat * factor(alloc)", "REML", t)
  add_fit(paste0("bcg/ablat*year/REML/", t), "bcg", "~ ablat * year", "REML", t)
  add_fit(paste0("bcg/I(ablat^2)/REML/", t), "bcg", "~ ablat + I(ablat^2)", "REML", t)
  add_fit(paste0("bcg/log(ablat)/REML/", t), "bcg", "~ log(ablat)", "REML", t)
  add_fit(paste0("bcg/0+alloc/REML/", t), "bcg", "~ 0 + factor(alloc)", "REML", t)
  # No intercept in the column space: metafor 3.8-1 centres yi (its Ymc) before QE and the
  # tau2 estimators, so only FE fits (coefficients from yi itself) are compared, QE excepted.
  add_fit(paste0("bcg/ablat-1/FE/", t), "bcg", "~ ablat - 1", "FE", t,
          newmods = one(10, 40))
  add_fit(paste0("bcg/ablat/sei/REML/", t), "bcg", "~ ablat", "REML", t, sei = TRUE)
  add_fit(paste0("bcg/pool/sei/REML/", t), "bcg", NULL, "REML", t, sei = TRUE)
  add_fit(paste0("bd2004/meta*wic/REML/", t), "bd2004", "~ meta * wic", "REML", t)
}
add_fit("bcg/ablat/DL/z", "bcg", "~ ablat", "DL", "z", newmods = one(10, 30, 50))

# ---- anova ---------------------------------------------------------------------------------
tests <- list()
add_lrt <- function(id, full, reduced) {
  a <- suppressWarnings(anova(models[[full]], models[[reduced]]))
  tests[[length(tests) + 1]] <<- list(
    id = id, type = "LRT", full = full, reduced = reduced,
    call = sprintf("anova(%s, %s)", full, reduced),
    df = arr(c(a$parms.f, a$parms.r)),
    loglik = arr(c(a$fit.stats.f["ll"], a$fit.stats.r["ll"])),
    deviance = arr(c(a$fit.stats.f["dev"], a$fit.stats.r["dev"])),
    aic = arr(c(a$fit.stats.f["AIC"], a$fit.stats.r["AIC"])),
    bic = arr(c(a$fit.stats.f["BIC"], a$fit.stats.r["BIC"])),
    aicc = arr(c(a$fit.stats.f["AICc"], a$fit.stats.r["AICc"])),
    lrt = a$LRT, pvalue = a$pval, qe = arr(c(a$QE.f, a$QE.r)),
    tau2 = arr(c(a$tau2.f, a$tau2.r)), r2 = a$R2)
}
add_wald <- function(id, model, btt) {
  a <- anova(models[[model]], btt = btt)
  tests[[length(tests) + 1]] <<- list(
    id = id, type = "Wald", model = model, btt = arr(btt - 1),
    call = sprintf("anova(%s, btt=c(%s))", model, paste(btt, collapse = ",")),
    qm = a$QM, qm_df = arr(na.omit(a$QMdf)), pvalue = a$QMp)
}
add_lincomb <- function(id, model, X) {
  a <- anova(models[[model]], X = X)
  tests[[length(tests) + 1]] <<- list(
    id = id, type = "Wald.L", model = model,
    L = lapply(seq_len(nrow(X)), function(i) arr(X[i, ])),
    call = sprintf("anova(%s, X=<L>)", model),
    estimate = arr(a$Xb), se = arr(a$se), zval = arr(a$zval), pvalue = arr(a$pval),
    qm = a$QM, qm_df = arr(na.omit(a$QMdf)), qm_pvalue = a$QMp)
}
for (t in c("z", "knha")) {
  add_lrt(paste0("bcg/ML/alloc-vs-ablat/", t), paste0("bcg/ablat+alloc/ML/", t),
          paste0("bcg/ablat/ML/", t))
  add_lrt(paste0("bcg/ML/ablat-vs-pool/", t), paste0("bcg/ablat/ML/", t),
          paste0("bcg/pool/ML/", t))
  add_lrt(paste0("bcg/REML/ablat-vs-FE/", t), paste0("bcg/ablat/REML/", t),
          paste0("bcg/ablat/FE/", t))
  add_lrt(paste0("bcg/REML/pool-vs-FE/", t), paste0("bcg/pool/REML/", t),
          paste0("bcg/pool/FE/", t))
  add_lrt(paste0("bcg/REML/alloc-vs-ablat/", t), paste0("bcg/ablat+alloc/REML/", t),
          paste0("bcg/ablat/REML/", t))
  add_lrt(paste0("bcg/FE/ablat-vs-pool/", t), paste0("bcg/ablat/FE/", t),
          paste0("bcg/pool/FE/", t))
  add_lrt(paste0("bd2004/ML/grade+length-vs-length/", t),
          paste0("bd2004/grade+length/ML/", t), paste0("bd2004/length/ML/", t))
  add_wald(paste0("bcg/wald/alloc/REML/", t), paste0("bcg/ablat+alloc/REML/", t), 3:4)
  add_wald(paste0("bcg/wald/ablat/ML/", t), paste0("bcg/ablat+alloc/ML/", t), 2)
  add_wald(paste0("bd2004/wald/grade/REML/", t), paste0("bd2004/grade+length/REML/", t), 2:4)
  add_lincomb(paste0("bcg/L/alloc/REML/", t), paste0("bcg/ablat+alloc/REML/", t),
              rbind(c(1, 10, 0, 0), c(0, 0, 1, -1), c(1, 30, 1, 0)))
  add_lincomb(paste0("bcg/L/ablat-noint/REML/", t), paste0("bcg/ablat/REML/", t),
              cbind(c(10, 30, 50)))
  add_lincomb(paste0("bd2004/L/grade/FE/", t), paste0("bd2004/grade+length/FE/", t),
              rbind(c(0, 1, -1, 0, 0), c(0, 0, 1, -1, 0)))
}

generator <- list(
  script = "tests/reference/make_model_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  note = paste0(
    "rma(..., data=, slab=study): control=list(threshold=1e-12, maxiter=10000, tol=1e-12) ",
    "for REML/ML; test 'knha' == our ci 'hksj'; fitstats: logLik/deviance/AIC/BIC/AICc as ",
    "metafor reports them (REML for REML fits, else ML); confint: $random rows tau2, tau, I2, ",
    "H2; predict_exp: predict(transf=exp) (no se); anova btt 0-based (metafor's minus 1); ",
    "L = metafor's X. Doubles written with %.17g."))

write_fixture(OUT, generator, list(fits = fits, tests = tests),
              objects = list(datasets = datasets_json))
n <- length(fits)
m <- length(tests)
message("wrote ", n, " fits and ", m, " tests to ", OUT)
