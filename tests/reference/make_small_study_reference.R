# make_small_study_reference.R -- Henmi-Copas intervals of metafor's hc() at a tight root
# tolerance, for tests/test_small_study.py. The shared fixture small_study.json (copied from
# ../shared/reference/r_fixtures/, made by small_study_public.R) used hc()'s default uniroot
# tolerance eps^(1/4) ~ 1.2e-4, which limits its interval to about 1e-4.
#
# Run from the repository root:   Rscript tests/reference/make_small_study_reference.R
# Output:                         tests/reference/small_study_hc_reference.json
#
# Input: the yi, vi of each case of tests/reference/small_study.json. Deterministic.

suppressPackageStartupMessages({library(metafor); library(jsonlite)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "small_study_hc_reference.json")
fx <- fromJSON(file.path("tests", "reference", "small_study.json"), simplifyVector = FALSE)
cases <- list()
for (cs in fx$cases) {
  yi <- as.numeric(unlist(cs$data$yi)); vi <- as.numeric(unlist(cs$data$vi))
  for (m in c("DL", "REML")) {
    res <- rma(yi, vi, method = m)
    h <- hc(res, control = list(tol = 1e-12))
    cases[[length(cases) + 1]] <- list(
      id = paste0(cs$id, "/", m),
      call = sprintf("hc(rma(yi, vi, method = \"%s\"), control = list(tol = 1e-12))", m),
      input = list(yi = I(yi), vi = I(vi)), method = m,
      beta = as.numeric(h$beta), se = h$se, ci.lb = h$ci.lb, ci.ub = h$ci.ub, tau2 = h$tau2)
  }
}
write_fixture(OUT, list(script = "tests/reference/make_small_study_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor"))),
              arrays = list(cases = cases))
