# make_selmodel_reference.R -- metafor selmodel() refitted at tight tolerances, for
# tests/test_selection_model.py. The shared fixture small_study.json (small_study_public.R)
# used selmodel()'s defaults: optim BFGS with a finite-difference gradient of step 1e-3 and
# reltol 1.5e-8, and for the beta model integrate(rel.tol = eps^0.25); those stop about 1e-4
# to 1e-6 short of the maximum. Here: BFGS with ndeps 1e-6, reltol 1e-14, maxit 300 and
# integrate(rel.tol = 1e-10). Fits that do not converge within maxit (tau2 running to 0 on
# the log scale) are left out.
#
# Run from the repository root:   Rscript tests/reference/make_selmodel_reference.R
# Output:                         tests/reference/selmodel_reference.json
#
# Input: the yi, vi and selmodel_alternative of each case of tests/reference/small_study.json
# (cases whose step-function intervals are all occupied). Deterministic.

suppressPackageStartupMessages({library(metafor); library(jsonlite)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "selmodel_reference.json")
fx <- fromJSON(file.path("tests", "reference", "small_study.json"), simplifyVector = FALSE)
num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
cases <- list()
for (cs in fx$cases) {
  yi <- as.numeric(unlist(cs$data$yi)); vi <- as.numeric(unlist(cs$data$vi))
  alt <- cs$selmodel_alternative
  for (m in c("ML", "EE")) for (ty in c("stepfun", "beta")) {
    res <- rma(yi, vi, method = m)
    npar <- 2 + if (ty == "stepfun") 4 else 2
    ctrl <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 300,
                 ndeps = rep(1e-6, npar), intCtrl = list(rel.tol = 1e-10))
    message(cs$id, " ", ty, " ", m, " ", format(Sys.time()))
    warns <- character(0)
    s <- tryCatch(withCallingHandlers(
      if (ty == "stepfun") selmodel(res, type = "stepfun", steps = c(0.025, 0.05, 0.5, 1),
                                    alternative = alt, control = ctrl)
      else selmodel(res, type = "beta", alternative = alt, control = ctrl),
      warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") }),
      error = function(e) NULL)
    if (is.null(s)) next
    cases[[length(cases) + 1]] <- list(
      id = paste0(cs$id, "/", ty, "__", m),
      call = sprintf(paste0("selmodel(rma(yi, vi, method = \"%s\"), type = \"%s\",%s alternative = \"%s\", ",
                            "control = list(optimizer = \"optim\", optmethod = \"BFGS\", reltol = 1e-14, ",
                            "maxit = 300, ndeps = rep(1e-6, %d), intCtrl = list(rel.tol = 1e-10)))"),
                     m, ty, if (ty == "stepfun") " steps = c(0.025, 0.05, 0.5, 1)," else "", alt, npar),
      input = list(yi = I(yi), vi = I(vi)), method = m, type = ty, alternative = alt,
      beta = as.numeric(s$beta), se = num(s$se), tau2 = s$tau2, se.tau2 = num(s$se.tau2),
      delta = I(as.numeric(s$delta)), se.delta = I(as.numeric(s$se.delta)),
      ll = s$ll, ll0 = s$ll0, LRT = s$LRT, LRTdf = s$LRTdf, LRT.tau2 = num(s$LRT.tau2),
      warnings = I(warns))
  }
}
write_fixture(OUT, list(script = "tests/reference/make_selmodel_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor"))),
              arrays = list(cases = cases))
