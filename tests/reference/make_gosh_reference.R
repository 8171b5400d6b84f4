# make_gosh_reference.R -- metafor gosh() with iterative estimators and permutest() under
# Knapp-Hartung, for tests/test_gosh.py and tests/test_permutation.py (the EE/DL GOSH and the
# z-test permutest values are copied from ../shared/reference/r_fixtures, see
# gosh_permutest_reference.json).
#
# Run from the repository root:   Rscript tests/reference/make_gosh_reference.R
# Output:                         tests/reference/gosh_reference.json
#
# The models are fitted with a tight convergence threshold so that metafor's Fisher scoring
# and our global maximiser agree to 1e-6 on every subset. Deterministic: fixed data, exact
# (all subsets, all sign flips / permutations), no random numbers.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "gosh_reference.json")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
arr <- function(x) I(as.numeric(x))

# eight schools (Rubin 1981) and the first eight BCG trials (log RR), as in the shared fixture
rubin <- data.frame(yi = c(28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16),
                    vi = c(222.01, 104.04, 265.69, 121, 88.36, 129.96, 108.16, 309.76))
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)[1:8, ]
bcg <- data.frame(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), ablat = dat.bcg$ablat[1:8])
sets <- list(Rubin1981 = rubin, dat.bcg_first8 = bcg)

gosh_cases <- list()
for (nm in names(sets)) for (method in c("REML", "PM", "ML")) {
  dat <- sets[[nm]]
  res <- rma(yi, vi, data = dat, method = method, control = CTRL)
  g <- gosh(res, progbar = FALSE)
  gosh_cases[[length(gosh_cases) + 1]] <- list(
    id = paste(nm, method, sep = "/"), dataset = nm, method = method,
    call = sprintf("gosh(rma(yi, vi, data = dat, method = \"%s\", control = CTRL), progbar = FALSE)", method),
    yi = arr(dat$yi), vi = arr(dat$vi),
    incl = lapply(seq_len(nrow(g$incl)), function(i) I(as.logical(g$incl[i, ]))),
    estimate = arr(g$res$estimate), QE = arr(g$res$QE), I2 = arr(g$res$I2),
    H2 = arr(g$res$H2), tau2 = arr(g$res$tau2))
}

perm_cases <- list()
for (method in c("REML", "DL")) {
  res <- rma(yi, vi, data = bcg, method = method, test = "knha", control = CTRL)
  p <- permutest(res, exact = TRUE, progbar = FALSE)
  perm_cases[[length(perm_cases) + 1]] <- list(
    id = paste("dat.bcg_first8", method, "knha", sep = "/"), mods = NULL, method = method,
    call = sprintf("permutest(rma(yi, vi, data = dat, method = \"%s\", test = \"knha\", control = CTRL), exact = TRUE)", method),
    yi = arr(bcg$yi), vi = arr(bcg$vi), pval = arr(p$pval), QMp = p$QMp,
    zval_perm = arr(sort(unlist(p$zval.perm[, 1]))), QM_perm = arr(sort(unlist(p$QM.perm))))
  res <- rma(yi, vi, mods = ~ ablat, data = bcg, method = method, test = "knha", control = CTRL)
  p <- permutest(res, exact = TRUE, progbar = FALSE)
  perm_cases[[length(perm_cases) + 1]] <- list(
    id = paste("dat.bcg_first8", method, "knha", "ablat", sep = "/"), mods = "ablat",
    method = method,
    call = sprintf("permutest(rma(yi, vi, mods = ~ ablat, data = dat, method = \"%s\", test = \"knha\", control = CTRL), exact = TRUE)", method),
    yi = arr(bcg$yi), vi = arr(bcg$vi), ablat = arr(bcg$ablat), pval = arr(p$pval),
    QMp = p$QMp, iterations = nrow(p$zval.perm),
    zval_perm_ablat = arr(sort(unlist(p$zval.perm[, 2]))), QM_perm = arr(sort(unlist(p$QM.perm))))
}

write_fixture(OUT,
  generator = list(script = "tests/reference/make_gosh_reference.R",
                   R = R.version.string, metafor = as.character(packageVersion("metafor")),
                   control = "threshold = 1e-12, maxiter = 10000, tol = 1e-12"),
  arrays = list(gosh = gosh_cases, permutest = perm_cases))
