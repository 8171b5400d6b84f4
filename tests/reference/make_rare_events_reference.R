# make_rare_events_reference.R -- metafor rma.glmm(measure = "OR", method = "ML") on the 2x2
# tables the report's rare-events model fits (analysis/report/rare_events.py), for
# tests/test_rare_events.py: the summary-of-findings cell is compared with these fits.
#
# Run from the repository root:   Rscript tests/reference/make_rare_events_reference.R
# Output:                         tests/reference/rare_events_reference.json
# Needs: metafor (3.8-1), lme4, BiasedUrn (Debian: r-cran-lme4, r-cran-biasedurn).
#
# Cases (every one stores its tables; the tests check that the pipeline fitted exactly them):
#   synthetic_*  the harm outcome of tests/rare_events_project.py (Beta2005's two dose arms
#                combined; Gamma2012 double zero), CM.EL and UM.FS;
#   shipped_*    the shipped plan's harm analyses on trials/ (dropout_adverse_event:
#                Addolorato 2002 0/20 vs 0/19; any_adverse_event: Ponizovsky 2015 0/32 vs
#                0/32): every table is double zero, and metafor stops (k = 0);
#   one_study    one informative table: metafor's ML fit stops (more parameters than data);
#   separated    every event in the control arms: metafor cannot fit the ML model.
# A case where metafor stops stores its error message. metafor's defaults otherwise
# (drop00 = TRUE, integrate() for CM.EL, nAGQ = 7 for UM.FS). Deterministic.

suppressPackageStartupMessages({library(metafor); library(lme4); library(BiasedUrn)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "rare_events_reference.json")

tables <- function(study, ai, bi, ci, di) list(study = study, ai = ai, bi = bi, ci = ci, di = di)
synthetic <- tables(c("Alpha 2001", "Beta 2005", "Gamma 2012", "Delta 2015"),
                    c(0, 4, 0, 1), c(30, 56, 25, 39), c(2, 0, 0, 3), c(28, 30, 25, 37))
sets <- list(
  list(id = "synthetic_CM.EL", model = "CM.EL", d = synthetic),
  list(id = "synthetic_UM.FS", model = "UM.FS", d = synthetic),
  list(id = "shipped_dropout_adverse_event", model = "CM.EL",
       d = tables("Addolorato 2002", 0, 20, 0, 19)),
  list(id = "shipped_any_adverse_event", model = "CM.EL",
       d = tables("Ponizovsky 2015", 0, 32, 0, 32)),
  list(id = "one_study", model = "CM.EL", d = tables(c("A", "B"), c(0, 1), c(20, 19),
                                                      c(0, 4), c(19, 16))),
  list(id = "separated", model = "CM.EL", d = tables(c("A", "B"), c(0, 0), c(20, 30),
                                                      c(3, 2), c(17, 28))))

cases <- list()
for (s in sets) {
  d <- s$d
  w <- character(0)
  fit <- tryCatch(withCallingHandlers(
    rma.glmm(measure = "OR", ai = d$ai, bi = d$bi, ci = d$ci, di = d$di, model = s$model,
             method = "ML"),
    warning = function(cond) { w <<- c(w, conditionMessage(cond));
                                invokeRestart("muffleWarning") }),
    error = function(e) conditionMessage(e))
  expected <- if (is.character(fit)) list(error = fit) else list(
    k = fit$k, estimate = c(fit$beta), se = fit$se, pval = fit$pval, ci_lb = fit$ci.lb,
    ci_ub = fit$ci.ub, tau2 = fit$tau2, OR = exp(c(fit$beta)), OR_lb = exp(fit$ci.lb),
    OR_ub = exp(fit$ci.ub))
  cases[[length(cases) + 1]] <- list(
    id = s$id, model = s$model,
    call = sprintf("rma.glmm(measure='OR', ai, bi, ci, di, model='%s', method='ML')", s$model),
    input = list(study = I(d$study), ai = I(as.numeric(d$ai)), bi = I(as.numeric(d$bi)),
                 ci = I(as.numeric(d$ci)), di = I(as.numeric(d$di))),
    expected = expected, r_warnings = I(w))
}

write_fixture(OUT, list(script = "tests/reference/make_rare_events_reference.R",
                        R = R.version.string,
                        metafor = as.character(packageVersion("metafor")),
                        lme4 = as.character(packageVersion("lme4")),
                        BiasedUrn = as.character(packageVersion("BiasedUrn"))),
              arrays = list(cases = cases))
