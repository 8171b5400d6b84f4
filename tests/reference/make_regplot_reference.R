# make_regplot_reference.R -- the bands of metafor's regplot() for tests/test_plots.py
# (analysis.plots.bubble_plot / regplot_bands).
#
# Run from the repository root:   Rscript tests/reference/make_regplot_reference.R
# Output:                         tests/reference/regplot_reference.json
#
# regplot(res, pi = TRUE) draws predict(res, newmods = xvals) with xvals 100 values from the
# smallest to the largest moderator value (its default). Model: BCG log risk ratios
# (dat.bcg, shipped as analysis.datasets "bcg") on absolute latitude, REML, with z and
# Knapp-Hartung (test = "knha") inference. Deterministic: fixed data, no random numbers.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "regplot_reference.json")
CTRL <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)
arr <- function(x) I(as.numeric(x))

dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
grid <- seq(min(dat$ablat), max(dat$ablat), length.out = 100)
cases <- list()
for (test in c("z", "knha")) {
  res <- rma(yi, vi, mods = ~ ablat, data = dat, method = "REML", test = test, control = CTRL)
  p <- predict(res, newmods = grid)
  cases[[length(cases) + 1]] <- list(
    id = paste0("bcg/RR/regplot/ablat/REML/", if (test == "knha") "hksj" else "z"),
    call = paste0("predict(rma(yi, vi, mods = ~ ablat, data = dat.bcg, method = \"REML\", ",
                  "test = \"", test, "\"), newmods = seq(min(ablat), max(ablat), ",
                  "length.out = 100))"),
    input = list(yi = arr(dat$yi), vi = arr(dat$vi), ablat = arr(dat$ablat)),
    options = list(method = "REML", ci = if (test == "knha") "hksj" else "z"),
    expected = list(x = arr(grid), pred = arr(p$pred), ci_low = arr(p$ci.lb),
                    ci_high = arr(p$ci.ub), pi_low = arr(p$pi.lb), pi_high = arr(p$pi.ub),
                    tau2 = res$tau2, coef = arr(coef(res)))
  )
}
write_fixture(OUT, list(script = "tests/reference/make_regplot_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor"))),
              arrays = list(cases = cases))
