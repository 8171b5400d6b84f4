# make_glmm_reference.R -- metafor rma.glmm(measure = "OR") fits: the unconditional model with
# fixed study effects (model = "UM.FS", lme4::glmer with nAGQ = 7) and the conditional model
# with the exact likelihood (model = "CM.EL", non-central hypergeometric via BiasedUrn,
# integrate() over the random effect), each with method = "ML" and "EE", for tests/test_glmm.py.
#
# Run from the repository root:   Rscript tests/reference/make_glmm_reference.R
# Output:                         tests/reference/glmm_reference.json
# Needs: metafor (3.8-1), lme4, BiasedUrn (Debian: r-cran-lme4, r-cran-biasedurn).
#
# Inputs: metafor's bundled dat.bcg (13 trials, no zero cells: a stable check) and
# dat.nielweise2007 (18 trials of catheter-related infections, rare events with single-zero
# arms and one double-zero trial). Every case stores its 2x2 tables, so the tests never need R.
# All of metafor's defaults are used (drop00 = TRUE, coding = 1/2, nAGQ = 7, nlminb,
# numDeriv Hessian, integrate() with rel.tol = .Machine$double.eps^0.25). Deterministic.

suppressPackageStartupMessages({library(metafor); library(lme4); library(BiasedUrn)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "glmm_reference.json")

data(dat.bcg, package = "metadat")
data(dat.nielweise2007, package = "metadat")
sets <- list(
  bcg = list(ai = dat.bcg$tpos, bi = dat.bcg$tneg, ci = dat.bcg$cpos, di = dat.bcg$cneg,
             study = paste(dat.bcg$author, dat.bcg$year)),
  nielweise2007 = with(dat.nielweise2007,
                       list(ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci, study = study)))

# lme4's optimum for UM.FS ML (the same glmer() call rma.glmm makes, from its retdat data):
# fixef = (mu, alpha_1..k), theta = tau, so the tests can evaluate their likelihood there.
glmer_parameters <- function(d, model, method) {
  if (model != "UM.FS" || method != "ML") return(NULL)
  g <- rma.glmm(measure = "OR", ai = d$ai, bi = d$bi, ci = d$ci, di = d$di, model = model,
                method = method, retdat = TRUE)
  dat.grp <- g$dat.grp; X.fit <- g$X.fit; study <- g$study; group <- g$group
  m <- suppressWarnings(suppressMessages(lme4::glmer(
    dat.grp ~ -1 + X.fit + study + (group - 1 | study), family = binomial, nAGQ = 7)))
  list(fixef = I(unname(lme4::fixef(m))), theta = unname(lme4::getME(m, "theta")))
}

cases <- list()
for (nm in names(sets)) {
  d <- sets[[nm]]
  for (model in c("UM.FS", "CM.EL")) {
    for (method in c("ML", "EE")) {
      w <- character(0)
      fit <- withCallingHandlers(
        rma.glmm(measure = "OR", ai = d$ai, bi = d$bi, ci = d$ci, di = d$di,
                 model = model, method = method),
        warning = function(cond) { w <<- c(w, conditionMessage(cond));
                                    invokeRestart("muffleWarning") })
      cases[[length(cases) + 1]] <- list(
        id = paste(nm, model, method, sep = "_"), data = nm, model = model, method = method,
        call = sprintf("rma.glmm(measure='OR', ai, bi, ci, di, model='%s', method='%s')",
                       model, method),
        input = list(ai = I(as.numeric(d$ai)), bi = I(as.numeric(d$bi)),
                     ci = I(as.numeric(d$ci)), di = I(as.numeric(d$di)), study = I(d$study)),
        expected = list(
          k = fit$k, estimate = c(fit$beta), se = fit$se, zval = fit$zval, pval = fit$pval,
          ci_lb = fit$ci.lb, ci_ub = fit$ci.ub, tau2 = fit$tau2, se_tau2 = fit$se.tau2,
          I2 = fit$I2, H2 = fit$H2, logLik = c(logLik(fit)),
          deviance = fit$fit.stats["dev", "ML"], AIC = fit$fit.stats["AIC", "ML"],
          BIC = fit$fit.stats["BIC", "ML"], AICc = fit$fit.stats["AICc", "ML"],
          QE_Wld = fit$QE.Wld, QEp_Wld = fit$QEp.Wld, QE_LRT = fit$QE.LRT,
          QEp_LRT = fit$QEp.LRT, QE_df = fit$QE.df),
        printed = I(capture.output(print(fit))),
        glmer = glmer_parameters(d, model, method),
        r_warnings = I(w))
    }
  }
}

write_fixture(OUT, list(script = "tests/reference/make_glmm_reference.R", R = R.version.string,
                        metafor = as.character(packageVersion("metafor")),
                        lme4 = as.character(packageVersion("lme4")),
                        BiasedUrn = as.character(packageVersion("BiasedUrn"))),
              arrays = list(cases = cases))
