# make_rma_mv_reference.R -- reference values for tests/test_rma_mv.py (ma.rma_mv, ma.robust,
# ma.anova of multilevel/multivariate fits).
#
# Run from the repository root:   Rscript tests/reference/make_rma_mv_reference.R
# Output:                         tests/reference/rma_mv_reference.json
#
# metafor 3.8-1 rma.mv() and robust() (clubSandwich 0.5.8 for clubSandwich = TRUE) on two of
# metafor's bundled data sets, written with their inputs:
#   konstantopoulos: dat.konstantopoulos2011 (schools within districts), random = ~ 1 |
#                    district/school, mods none or ~ I(year - 1990), REML and ML, test z and t;
#                    robust(res, cluster = district) (CR1, t on n - p df) and
#                    robust(res, cluster = district, clubSandwich = TRUE) (CR2, Satterthwaite).
#   berkey:          dat.berkey1998 (two outcomes per trial, known V from v1i/v2i),
#                    mods ~ outcome - 1 [+ outcome:I(year - 1983)], random = ~ outcome | trial,
#                    struct = "UN", REML and ML.
#   lrt:             anova(full, reduced) likelihood-ratio tests between nested fits.
#   robust also on:  konstantopoulos with mods ~ year_c + year_c2 (year_c2 = year_c^2; QM a
#                    joint test of 2 coefficients: clubSandwich Wald_test(test = "HTZ")),
#                    with btt = 2 and btt = c(1, 3) refits (subset tests), and on the berkey
#                    fits clustered by trial (2 and 4 coefficients, no intercept).
#   robust_uni:      robust(rma(yi, vi, mods = ~ ablat + year, data = dat.bcg log RR)) clustered
#                    by the first author's surname (Comstock 3 trials, Rosenthal 2; 10
#                    clusters), test z and knha, CR1 and CR2; and btt = 3 (year only).
# Tight control: rel.tol = 1e-12 (nlminb), so 1e-6 comparisons are meaningful; a fit where
# nlminb reports no convergence at 1e-12 is refitted at 1e-10 (the "rel_tol" of its record).

suppressPackageStartupMessages({library(metafor); library(clubSandwich)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "rma_mv_reference.json")
CTRL <- list(rel.tol = 1e-12, iter.max = 100000, eval.max = 100000)
LOOSE <- list(rel.tol = 1e-10, iter.max = 100000, eval.max = 100000)
# rma.mv(...) with CTRL, else with LOOSE; the tolerance used is kept as attribute "rel_tol"
tight <- function(expr_fun) {
  res <- tryCatch(expr_fun(CTRL), error = function(e) NULL)
  tol <- 1e-12
  if (is.null(res)) {
    res <- expr_fun(LOOSE)
    tol <- 1e-10
  }
  attr(res, "rel_tol") <- tol
  res
}
arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))

kon <- dat.konstantopoulos2011
kon$year_c <- kon$year - 1990
kon$year_c2 <- kon$year_c^2
ber <- dat.berkey1998
ber$year_c <- ber$year - 1983
V_ber <- bldiag(lapply(split(ber[, c("v1i", "v2i")], ber$trial), as.matrix))

fitstats_list <- function(res) {
  fs <- fitstats(res)
  list(loglik = fs[1, 1], deviance = fs[2, 1], aic = fs[3, 1], bic = fs[4, 1],
       aicc = fs[5, 1])
}

fit_record <- function(id, dataset, res, mods, random, method, test, call) {
  list(id = id, dataset = dataset, mods = mods, random = random, method = method,
       test = test, call = call, names = chr(rownames(res$beta)), coef = arr(res$beta),
       se = arr(res$se), zval = arr(res$zval), pval = arr(res$pval), ci_lb = arr(res$ci.lb),
       ci_ub = arr(res$ci.ub), sigma2 = arr(res$sigma2), tau2 = arr(res$tau2),
       rho = arr(res$rho), QE = res$QE, QEdf = res$k - res$p, QEp = res$QEp, QM = res$QM,
       QMdf = arr(res$QMdf), QMp = res$QMp, ddf = arr(res$ddf), vcov = I(unname(res$vb)),
       rel_tol = attr(res, "rel_tol"), fitstats = fitstats_list(res))
}

fits <- list()
keep <- list()
for (method in c("REML", "ML")) {
  for (mods in c("none", "year_c")) {
    for (test in c("z", "t")) {
      if (test == "t" && method == "ML") next
      res <- if (mods == "none") tight(function(ctrl)
        rma.mv(yi, vi, random = ~ 1 | district/school, method = method, test = test,
               data = kon, control = ctrl))
      else tight(function(ctrl)
        rma.mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, method = method,
               test = test, data = kon, control = ctrl))
      id <- sprintf("kon_%s_%s_%s", method, mods, test)
      call <- sprintf("rma.mv(yi, vi, mods = %s, random = ~ 1 | district/school, method = '%s', test = '%s')",
                      if (mods == "none") "NULL" else "~ I(year - 1990)", method, test)
      fits[[length(fits) + 1]] <- fit_record(id, "konstantopoulos", res, mods,
                                             "district/school", method, test, call)
      keep[[id]] <- res
    }
  }
  # one level only (reduced model of the test of the school variance)
  res <- tight(function(ctrl)
    rma.mv(yi, vi, random = ~ 1 | district, method = method, data = kon, control = ctrl))
  id <- sprintf("kon_%s_none_z_district", method)
  fits[[length(fits) + 1]] <- fit_record(id, "konstantopoulos", res, "none", "district", method,
                                         "z", sprintf("rma.mv(yi, vi, random = ~ 1 | district, method = '%s')", method))
  keep[[id]] <- res
  for (mods in c("outcome", "outcome_year")) {
    res <- if (mods == "outcome") tight(function(ctrl)
      rma.mv(yi, V_ber, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN",
             method = method, data = ber, control = ctrl))
    else tight(function(ctrl)
      rma.mv(yi, V_ber, mods = ~ outcome + outcome:year_c - 1, random = ~ outcome | trial,
             struct = "UN", method = method, data = ber, control = ctrl))
    id <- sprintf("ber_%s_%s", method, mods)
    call <- sprintf("rma.mv(yi, V, mods = %s, random = ~ outcome | trial, struct = 'UN', method = '%s')",
                    if (mods == "outcome") "~ outcome - 1" else "~ outcome + outcome:I(year - 1983) - 1", method)
    fits[[length(fits) + 1]] <- fit_record(id, "berkey", res, mods, "outcome|trial:UN", method,
                                           "z", call)
    keep[[id]] <- res
  }
}

quad <- function(btt) function(ctrl)
  rma.mv(yi, vi, mods = ~ year_c + year_c2, random = ~ 1 | district/school, btt = btt,
         data = kon, control = ctrl)
res <- tight(quad(NULL))
fits[[length(fits) + 1]] <- fit_record("kon_REML_year_quad_z", "konstantopoulos", res,
                                       "year_quad", "district/school", "REML", "z",
                                       "rma.mv(yi, vi, mods = ~ I(year - 1990) + I((year - 1990)^2), random = ~ 1 | district/school)")
keep[["kon_REML_year_quad_z"]] <- res
# the same fit with btt = 2 and btt = c(1, 3): robust() tests the fit's btt
keep[["kon_REML_year_quad_z_btt2"]] <- tight(quad(2))
keep[["kon_REML_year_quad_z_btt13"]] <- tight(quad(c(1, 3)))

# one robust() record; btt = the coefficient names given as btt (NULL: metafor's default),
# tested = the names metafor's QM tests
robust_record <- function(id, fit, cluster_name, cs, btt, rob, res, call) {
  list(id = id, fit = fit, cluster = cluster_name, clubsandwich = cs, call = call,
       btt = if (is.null(btt)) NULL else chr(rownames(res$beta)[btt]),
       tested = chr(rownames(res$beta)[res$btt]),
       coef = arr(rob$beta), se = arr(rob$se), tval = arr(rob$zval), pval = arr(rob$pval),
       df = arr(rob$ddf), ci_lb = arr(rob$ci.lb), ci_ub = arr(rob$ci.ub),
       QM = rob$QM, QMdf = arr(rob$QMdf), QMp = rob$QMp, vcov = I(unname(rob$vb)))
}
robust_cases <- list(
  list(fit = "kon_REML_none_z", key = "kon_REML_none_z", btt = NULL),
  list(fit = "kon_REML_year_c_z", key = "kon_REML_year_c_z", btt = NULL),
  list(fit = "kon_ML_year_c_z", key = "kon_ML_year_c_z", btt = NULL),
  list(fit = "kon_REML_year_quad_z", key = "kon_REML_year_quad_z", btt = NULL),
  list(fit = "kon_REML_year_quad_z", key = "kon_REML_year_quad_z_btt2", btt = 2),
  list(fit = "kon_REML_year_quad_z", key = "kon_REML_year_quad_z_btt13", btt = c(1, 3)),
  list(fit = "ber_REML_outcome", key = "ber_REML_outcome", btt = NULL),
  list(fit = "ber_REML_outcome_year", key = "ber_REML_outcome_year", btt = NULL))
robust_fits <- list()
for (rc in robust_cases) {
  res <- keep[[rc$key]]
  cl_name <- if (startsWith(rc$fit, "ber")) "trial" else "district"
  cl <- if (startsWith(rc$fit, "ber")) ber$trial else kon$district
  for (cs in c(FALSE, TRUE)) {
    rob <- robust(res, cluster = cl, clubSandwich = cs)
    id <- paste0(rc$key, if (cs) "_CR2" else "_CR1")
    call <- sprintf("robust(%s, cluster = %s, clubSandwich = %s)", rc$key, cl_name, cs)
    robust_fits[[length(robust_fits) + 1]] <- robust_record(id, rc$fit, cl_name, cs, rc$btt,
                                                            rob, res, call)
  }
}

# univariate: robust(rma(...)) on dat.bcg (log risk ratios), clustered by research group
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg$group <- sub("[ ,&].*", "", bcg$author)  # first author's surname
UNI_CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
robust_uni <- list()
for (test in c("z", "knha")) {
  for (btt in list(NULL, 3)) {
    res <- rma(yi, vi, mods = ~ ablat + year, data = bcg, test = test, btt = btt,
               control = UNI_CTRL)
    for (cs in c(FALSE, TRUE)) {
      rob <- robust(res, cluster = bcg$group, clubSandwich = cs)
      id <- sprintf("bcg_REML_%s%s_%s", test, if (is.null(btt)) "" else "_btt3",
                    if (cs) "CR2" else "CR1")
      call <- sprintf("robust(rma(yi, vi, mods = ~ ablat + year, test = '%s'%s), cluster = group, clubSandwich = %s)",
                      test, if (is.null(btt)) "" else ", btt = 3", cs)
      rec <- robust_record(id, "bcg", "group", cs, btt, rob, res, call)
      rec$test <- test
      robust_uni[[length(robust_uni) + 1]] <- rec
    }
  }
}

lrt <- list()
pairs <- list(c("kon_ML_year_c_z", "kon_ML_none_z"), c("kon_REML_none_z", "kon_REML_none_z_district"),
              c("ber_ML_outcome_year", "ber_ML_outcome"))
for (pr in pairs) {
  a <- anova(keep[[pr[1]]], keep[[pr[2]]])
  lrt[[length(lrt) + 1]] <- list(full = pr[1], reduced = pr[2], df_full = a$parms.f,
                                 df_reduced = a$parms.r, LRT = a$LRT, pval = a$pval,
                                 aic_full = a$fit.stats.f[["AIC"]],
                                 aic_reduced = a$fit.stats.r[["AIC"]])
}

write_fixture(OUT, "tests/reference/make_rma_mv_reference.R (metafor 3.8-1, clubSandwich 0.5.8)",
              arrays = list(fits = fits, robust = robust_fits, robust_uni = robust_uni,
                            lrt = lrt),
              objects = list(
                konstantopoulos = list(yi = arr(kon$yi), vi = arr(kon$vi),
                                       district = arr(kon$district), school = arr(kon$school),
                                       year = arr(kon$year)),
                bcg = list(yi = arr(bcg$yi), vi = arr(bcg$vi), ablat = arr(bcg$ablat),
                           year = arr(bcg$year), group = chr(bcg$group)),
                berkey = list(yi = arr(ber$yi), V = I(unname(as.matrix(V_ber))),
                              trial = arr(ber$trial), outcome = chr(ber$outcome),
                              year = arr(ber$year))))
