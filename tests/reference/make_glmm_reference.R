# make_glmm_reference.R -- metafor rma.glmm(measure = "OR") fits: the unconditional model with
# fixed study effects (model = "UM.FS", lme4::glmer with nAGQ = 7) and the conditional model
# with the exact likelihood (model = "CM.EL", non-central hypergeometric via BiasedUrn,
# integrate() over the random effect), each with method = "ML" and "EE", for tests/test_glmm.py.
#
# Run from the repository root:   Rscript tests/reference/make_glmm_reference.R
# Output:                         tests/reference/glmm_reference.json
# Needs: metafor (3.8-1), lme4, BiasedUrn (Debian: r-cran-lme4, r-cran-biasedurn).
#
# Inputs: metafor's bundled dat.bcg (13 trials, no zero cells, one of 176,782 patients),
# dat.nielweise2007 (18 trials of catheter-related infections, rare events with single-zero
# arms and one double-zero trial) and dat.collins1985b's pre-eclampsia counts (9 trials, no
# zero cells, at most 2,706 patients). Every case stores its 2x2 tables, so the tests never
# need R. All of metafor's defaults are used (drop00 = TRUE, coding = 1/2, nAGQ = 7, nlminb,
# numDeriv Hessian, integrate() with rel.tol = .Machine$double.eps^0.25). Deterministic.
#
# CM.EL cases also store `numderiv_r4`: the same fit with control = list(hessianCtrl =
# list(r = 4), dnchgcalc = "dnoncenhypergeom"). rma.glmm's default hessianCtrl = list(r = 16)
# has numDeriv extrapolate over 16 central differences from a step of 0.1 |x|, halving each
# time; the last is 0.1 |x| / 2^15 (5e-8 for dat.bcg's saturated intercept of -0.017),
# where the log-pmf's rounding (BiasedUrn's precision is 1e-10) swamps the second difference.
# The saturated model's Hessian (QE.Wld) and the EE Hessian (se) therefore move with r (EE
# cases store `QE_Wld_by_r`): dat.bcg's QE.Wld is 163.0900 at r = 4, 163.195 at r = 8,
# 184.03 at r = 12 and 268.61 at r = 16 (BiasedUrn), 163.08946 at r = 4 with metafor's own
# exact-summation pmf; dat.collins1985b's 27.10303 at r = 4 and 26.947 at r = 16. At r = 16
# the Hessian's intercept entry on dat.bcg is 55,572, where the exact information (the sum of
# the 13 tables' conditional variances) is 559.9. r = 4 is numDeriv's own default, and
# dnoncenhypergeom avoids BiasedUrn's approximation on dat.bcg's large tables (2.9e-6
# relative in QE.Wld there).

suppressPackageStartupMessages({library(metafor); library(lme4); library(BiasedUrn)})
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "glmm_reference.json")

data(dat.bcg, package = "metadat")
data(dat.nielweise2007, package = "metadat")
data(dat.collins1985b, package = "metadat")
sets <- list(
  bcg = list(ai = dat.bcg$tpos, bi = dat.bcg$tneg, ci = dat.bcg$cpos, di = dat.bcg$cneg,
             study = paste(dat.bcg$author, dat.bcg$year)),
  nielweise2007 = with(dat.nielweise2007,
                       list(ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci, study = study)),
  collins1985b = with(dat.collins1985b,
                      list(ai = pre.xti, bi = pre.nti - pre.xti, ci = pre.xci,
                           di = pre.nci - pre.xci, study = paste(author, year))))

# CM.EL refitted with numDeriv's default number of Richardson steps and the exact pmf (see
# the header): QE.Wld and the SEs without the rounding artefact of r = 16.
R4_CONTROL <- list(hessianCtrl = list(r = 4), dnchgcalc = "dnoncenhypergeom")
numderiv_r4 <- function(d, model, method) {
  if (model != "CM.EL") return(NULL)
  fit <- suppressWarnings(rma.glmm(measure = "OR", ai = d$ai, bi = d$bi, ci = d$ci,
                                   di = d$di, model = model, method = method,
                                   control = R4_CONTROL))
  out <- list(control = "list(hessianCtrl = list(r = 4), dnchgcalc = 'dnoncenhypergeom')",
              QE_Wld = fit$QE.Wld, se = fit$se, se_tau2 = fit$se.tau2,
              estimate = c(fit$beta), tau2 = fit$tau2)
  if (method == "EE") {  # QE.Wld (the saturated fit) against r, with the default BiasedUrn pmf
    r <- c(4, 8, 12, 16)
    out$QE_Wld_by_r <- list(r = I(r), QE_Wld = I(vapply(r, function(ri) suppressWarnings(
      rma.glmm(measure = "OR", ai = d$ai, bi = d$bi, ci = d$ci, di = d$di, model = model,
               method = method, control = list(hessianCtrl = list(r = ri))))$QE.Wld, 0)))
  }
  out
}

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
        numderiv_r4 = numderiv_r4(d, model, method),
        r_warnings = I(w))
    }
  }
}

write_fixture(OUT, list(script = "tests/reference/make_glmm_reference.R", R = R.version.string,
                        metafor = as.character(packageVersion("metafor")),
                        lme4 = as.character(packageVersion("lme4")),
                        BiasedUrn = as.character(packageVersion("BiasedUrn"))),
              arrays = list(cases = cases))
