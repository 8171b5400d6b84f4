# make_rma_mv_na_reference.R -- reference values for the missing-value handling of ma.rma_mv
# (tests/test_rma_mv.py).
#
# Run from the repository root:   Rscript tests/reference/make_rma_mv_na_reference.R
# Output:                         tests/reference/rma_mv_na_reference.json
#
# metafor 3.8-1 rma.mv() (default na.action "na.omit": "Rows with NAs omitted from model
# fitting.") on two bundled data sets with values set to NA, written with their inputs:
#   kon: dat.konstantopoulos2011, yi[3], vi[10] and year[20] set to NA; mods = ~ I(year - 1990),
#        random = ~ 1 | district/school, REML and ML; robust(res, cluster = district) (CR1).
#   ber: dat.berkey1998 with the block-diagonal V of v1i/v2i; V[4, 4] set to NA (row 4 goes),
#        V[9, 10] = V[10, 9] set to NA (rows 9 and 10 go: metafor's .anyNAv drops both rows of a
#        missing covariance); mods = ~ outcome - 1,
#        random = ~ outcome | trial, struct = "UN", REML.
# Each record keeps metafor's not.na (the rows used) and the warning text.
# Tight control: kon with nlminb at rel.tol = 1e-12. ber with bobyqa at rhoend = 1e-12: on the
# seven rows left nlminb reports no convergence at rel.tol 1e-12 and at 1e-10 stops 1e-5 off in
# rho (the restricted likelihood is flat in it); bobyqa reaches a higher log-likelihood
# (3.64034451324 against 3.64034451321). The record's "control" names the one used.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "rma_mv_na_reference.json")
CTRL <- list(rel.tol = 1e-12, iter.max = 100000, eval.max = 100000)
BOBYQA <- list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 100000)
arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))

kon <- dat.konstantopoulos2011
kon$yi[3] <- NA
kon$vi[10] <- NA
kon$year[20] <- NA
ber <- dat.berkey1998
V_ber <- bldiag(lapply(split(ber[, c("v1i", "v2i")], ber$trial), as.matrix))
V_ber[4, 4] <- NA
V_ber[9, 10] <- V_ber[10, 9] <- NA

# the fit and the warning it gave
fit_warned <- function(expr_fun, ctrl) {
  msg <- character(0)
  res <- withCallingHandlers(expr_fun(ctrl), warning = function(w) {
    msg <<- c(msg, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(res = res, warning = paste(msg, collapse = " | "),
       control = paste(names(ctrl), unlist(ctrl), sep = " = ", collapse = ", "))
}

record <- function(id, dataset, fw, call) {
  res <- fw$res
  list(id = id, dataset = dataset, call = call, warning = fw$warning, k = res$k,
       k_all = res$k.f, not_na = I(res$not.na), names = chr(rownames(res$beta)),
       coef = arr(res$beta), se = arr(res$se), sigma2 = arr(res$sigma2), tau2 = arr(res$tau2),
       rho = arr(res$rho), QE = res$QE, QEdf = res$k - res$p, QM = res$QM,
       loglik = as.numeric(logLik(res)), method = res$method, control = fw$control)
}

fits <- list()
robust_fits <- list()
for (method in c("REML", "ML")) {
  fw <- fit_warned(function(ctrl) rma.mv(yi, vi, mods = ~ I(year - 1990),
                                     random = ~ 1 | district/school, method = method,
                                     data = kon, slab = study, control = ctrl), CTRL)
  id <- paste0("kon_", method)
  fits[[length(fits) + 1]] <- record(id, "kon", fw, sprintf(
    "rma.mv(yi, vi, mods = ~ I(year - 1990), random = ~ 1 | district/school, method = '%s', data = kon, slab = study)",
    method))
  rob <- robust(fw$res, cluster = kon$district)
  robust_fits[[length(robust_fits) + 1]] <- list(
    id = paste0(id, "_CR1"), fit = id, call = sprintf("robust(%s, cluster = district)", id),
    coef = arr(rob$beta), se = arr(rob$se), df = arr(rob$ddf), pval = arr(rob$pval))
}
fw <- fit_warned(function(ctrl) rma.mv(yi, V_ber, mods = ~ outcome - 1, random = ~ outcome | trial,
                                   struct = "UN", method = "REML", data = ber, control = ctrl),
                 BOBYQA)
fits[[length(fits) + 1]] <- record("ber_REML", "ber", fw,
  "rma.mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial, struct = 'UN', method = 'REML', data = ber)")

write_fixture(OUT, "tests/reference/make_rma_mv_na_reference.R (metafor 3.8-1)",
              arrays = list(fits = fits, robust = robust_fits),
              objects = list(
                kon = list(yi = arr(kon$yi), vi = arr(kon$vi), district = arr(kon$district),
                           school = arr(kon$school), study = arr(kon$study),
                           year = arr(kon$year)),
                ber = list(yi = arr(ber$yi), V = I(unname(as.matrix(V_ber))),
                           trial = arr(ber$trial), outcome = chr(ber$outcome))))
