# make_result_data_reference.R -- reference values for tests/test_result_data.py: the per-study
# data metafor keeps on its fitted objects (rma.mh and rma.peto $yi/$vi, escalc "PETO"), and
# rma() called with data=, sei= and slab=.
#
# Run from the repository root:   Rscript tests/reference/make_result_data_reference.R
# Output:                         tests/reference/result_data_reference.json
# Doubles at %.17g through the shared writer (tests/reference/json_writer.R); NA -> null.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "result_data_reference.json")
arr <- function(x) I(as.numeric(x))
chr <- function(x) I(as.character(x))
cases <- list()
add <- function(id, call, input, expected) {
  cases[[length(cases) + 1]] <<- list(id = id, call = call, input = input, expected = expected)
}

# 2x2 tables with a zero cell (2), a double zero (4) and a zero control arm (5), and BCG.
small <- list(ai = c(1, 0, 5, 0, 3), n1i = c(20, 15, 30, 10, 25), ci = c(4, 3, 5, 0, 0),
              n2i = c(20, 16, 30, 12, 25))
bcg <- list(ai = dat.bcg$tpos, n1i = dat.bcg$tpos + dat.bcg$tneg, ci = dat.bcg$cpos,
            n2i = dat.bcg$cpos + dat.bcg$cneg)
tables <- list(small = small, bcg = bcg)
for (name in names(tables)) {
  t <- tables[[name]]
  input <- lapply(t, arr)
  # the stored yi/vi of rma.mh / rma.peto hold only the tables kept (double zeros dropped);
  # spread them back over the input rows, NA for the dropped ones
  spread <- function(res, x) { out <- rep(NA_real_, length(t$ai)); out[res$not.na.yivi] <- x; out }
  for (m in c("OR", "RR", "RD")) {
    res <- rma.mh(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, measure = m)
    add(sprintf("%s/mh/%s", name, m), sprintf("rma.mh(ai, n1i, ci, n2i, measure='%s')", m),
        input, list(yi = arr(spread(res, res$yi)), vi = arr(spread(res, res$vi)),
                    beta = as.numeric(res$beta)))
  }
  res <- rma.peto(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
  add(sprintf("%s/peto", name), "rma.peto(ai, n1i, ci, n2i)", input,
      list(yi = arr(spread(res, res$yi)), vi = arr(spread(res, res$vi)),
           beta = as.numeric(res$beta)))
  for (d00 in c(FALSE, TRUE)) {
    es <- suppressWarnings(escalc("PETO", ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i,
                                  drop00 = d00))
    add(sprintf("%s/escalc/PETO/drop00=%s", name, d00),
        sprintf("escalc('PETO', ai, n1i, ci, n2i, drop00=%s)", d00), input,
        list(yi = arr(es$yi), vi = arr(es$vi)))
  }
}

# rma() with data=, sei= and slab=: the BCG log risk ratios
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dat$sei <- sqrt(dat$vi)
dat$label <- paste(dat$author, dat$year)
for (t in c("z", "knha")) {
  res <- rma(yi, sei = sei, data = dat, slab = label, test = t)
  add(sprintf("bcg/rma/sei/%s", t), sprintf("rma(yi, sei=sei, data=dat, slab=label, test='%s')", t),
      list(yi = arr(dat$yi), sei = arr(dat$sei), label = chr(dat$label)),
      list(estimate = as.numeric(res$beta), se = res$se, tau2 = res$tau2, ci_low = res$ci.lb,
           ci_high = res$ci.ub, slab = chr(res$slab)))
}

generator <- list(
  script = "tests/reference/make_result_data_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  note = "rma.mh/rma.peto $yi/$vi spread over the input rows (NA = dropped double zero); escalc('PETO') with its defaults (add=1/2, to='only0').")
write_fixture(OUT, generator, list(cases = cases))
n <- length(cases)
message("wrote ", n, " cases to ", OUT)
