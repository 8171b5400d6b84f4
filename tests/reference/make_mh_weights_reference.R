# make_mh_weights_reference.R -- percent weights of metafor's Mantel-Haenszel and Peto
# fixed-effect models, for tests/test_forest_presentation.py (the forest plot's weight column).
#
# Run from the repository root:   Rscript tests/reference/make_mh_weights_reference.R
# Output:                         tests/reference/mh_weights_reference.json
#
# Four 2x2 tables (the last a double-zero study, weight 0 for the ratio measures).
# Deterministic: fixed data, no random numbers.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "mh_weights_reference.json")
arr <- function(x) I(as.numeric(x))
tab <- list(ai = c(4, 6, 3, 0), n1i = c(123, 306, 231, 20), ci = c(11, 29, 11, 0),
            n2i = c(139, 303, 220, 19))
cases <- list()
for (m in c("OR", "RR", "RD", "PETO")) {
  res <- if (m == "PETO") {
    rma.peto(ai = tab$ai, n1i = tab$n1i, ci = tab$ci, n2i = tab$n2i)
  } else {
    rma.mh(ai = tab$ai, n1i = tab$n1i, ci = tab$ci, n2i = tab$n2i, measure = m)
  }
  cases[[length(cases) + 1]] <- list(
    id = paste0("mh_weights/", m),
    call = if (m == "PETO") "weights(rma.peto(ai, n1i, ci, n2i))"
           else paste0("weights(rma.mh(ai, n1i, ci, n2i, measure = \"", m, "\"))"),
    input = list(events_t = arr(tab$ai), n_t = arr(tab$n1i), events_c = arr(tab$ci),
                 n_c = arr(tab$n2i)),
    measure = m,
    expected = list(weights = arr(weights(res)))
  )
}
write_fixture(OUT, list(script = "tests/reference/make_mh_weights_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor"))),
              arrays = list(cases = cases))
