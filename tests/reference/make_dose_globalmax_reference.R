# make_dose_globalmax_reference.R -- global-maximum fixtures for tests/test_dose_globalmax.py
#
# Run from the repository root:
#     Rscript tests/reference/make_dose_globalmax_reference.R
# Input:  tests/reference/data/alcohol_cvd.csv (dosresmeta's alcohol_cvd data with the
#         Greenland-Longnecker covariance blocks S1..S4 that dosresmeta itself computed; source
#         in tests/reference/data/alcohol_cvd.md).
# Output: tests/reference/dose_globalmax_reference.json
#
# Each (restricted) likelihood is maximised by metafor 3.8 rma.mv with several optimisers
# (nlminb, optim Nelder-Mead, optim BFGS, minqa bobyqa) from several starts (metafor's default
# and a grid of tau2.init x rho.init); the fit with the highest logLik is kept and every
# optimiser's logLik is recorded (`runs`), so that a local maximum shows up as a spread.
# Cases:
#   alcohol_cvd_twostage_<model>_<method>: dosresmeta's default (proc = "2stage"): per-study GLS
#       b_s, S_s of logrr ~ dose [+ I(dose^2)] - 1, then
#       rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | id, struct = "UN").
#   alcohol_cvd_onestage_quadratic_<method>: dosresmeta proc = "1stage":
#       rma.mv(logrr, V, mods = ~ dose + dose2 - 1, random = ~ dose + dose2 - 1 | id,
#              struct = "GEN").
# Numbers are written with jsonlite digits = NA (15 significant digits).

suppressPackageStartupMessages({library(metafor); library(jsonlite)})
OUT <- file.path("tests", "reference", "dose_globalmax_reference.json")
DATA <- file.path("tests", "reference", "data", "alcohol_cvd.csv")

d <- read.csv(DATA, stringsAsFactors = FALSE)
ids <- unique(d$id)
nr <- d[!is.na(d$se), ]
nr$dose2 <- nr$dose^2
S_of <- function(s) {
  x <- nr[nr$id == s, ]
  as.matrix(x[, paste0("S", seq_len(nrow(x))), drop = FALSE])
}
bdiag_list <- function(blocks) {
  k <- sum(sapply(blocks, nrow)); out <- matrix(0, k, k); at <- 0
  for (B in blocks) { i <- at + seq_len(nrow(B)); out[i, i] <- B; at <- at + nrow(B) }
  out
}
V <- bdiag_list(lapply(ids, S_of))
design <- function(x, model) if (model == "linear") cbind(dose = x$dose) else
  cbind(dose = x$dose, dose2 = x$dose^2)

TOL <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
OPTIMISERS <- list(
  nlminb = TOL,
  nelder_mead = list(optimizer = "optim", optmethod = "Nelder-Mead", reltol = 1e-15,
                     maxit = 100000),
  bfgs = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 10000),
  bobyqa = list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 100000))

# starts: metafor's default plus a grid (tau2.init relative to the default's tau2)
run_all <- function(fitfun, default_tau2) {
  starts <- list(list())
  for (sc in c(0.01, 1, 100)) for (rho in c(-0.9, 0, 0.9))
    starts[[length(starts) + 1]] <- list(tau2.init = default_tau2 * sc, rho.init = rho)
  runs <- list(); best <- NULL
  for (oname in names(OPTIMISERS)) for (si in seq_along(starts)) {
    ctrl <- c(OPTIMISERS[[oname]], starts[[si]])
    fit <- tryCatch(suppressWarnings(fitfun(ctrl)), error = function(e) NULL)
    ll <- if (is.null(fit)) NA else as.numeric(logLik(fit))
    runs[[length(runs) + 1]] <- list(optimizer = oname, start = si - 1, logLik = ll)
    if (!is.null(fit) && (is.null(best) || ll > as.numeric(logLik(best)))) {
      best <- fit; best$opt_name <- sprintf("%s, start %d", oname, si - 1)
    }
  }
  list(best = best, runs = runs)
}

# metafor's defaults, only to scale the grid of starts (nlminb with rel.tol = 1e-12 may stop
# with "false convergence" on these flat likelihoods)
default_fit <- function(fitfun) {
  for (ctrl in list(TOL, list())) {
    fit <- tryCatch(suppressWarnings(fitfun(ctrl)), error = function(e) NULL)
    if (!is.null(fit)) return(fit)
  }
  stop("rma.mv failed with metafor's default control")
}

psi_of <- function(fit, q) {
  if (q == 1) return(matrix(fit$sigma2))
  if (!is.null(fit$G) && all(dim(fit$G) == c(q, q))) return(unname(fit$G))
  t2 <- fit$tau2; r <- fit$rho
  matrix(c(t2[1], r * sqrt(t2[1] * t2[2]), r * sqrt(t2[1] * t2[2]), t2[2]), 2)
}

cases <- list()
add <- function(case) { message(case$id); cases[[length(cases) + 1]] <<- case }

# ---------------------------------------------------------------- two-stage (dosresmeta default)
for (model in c("linear", "quadratic")) {
  b <- NULL; S_blocks <- list(); coef <- NULL; sid <- NULL
  for (s in ids) {
    x <- nr[nr$id == s, ]
    X <- design(x, model); W <- solve(S_of(s))
    vb <- solve(t(X) %*% W %*% X)
    b <- c(b, vb %*% t(X) %*% W %*% x$logrr)
    S_blocks[[length(S_blocks) + 1]] <- vb
    coef <- c(coef, seq_len(ncol(X))); sid <- c(sid, rep(s, ncol(X)))
  }
  S <- bdiag_list(S_blocks)
  dd <- data.frame(b = b, coef = factor(coef), sid = sid)
  q <- ncol(design(nr[1, ], model))
  for (method in c("REML", "ML")) {
    fitfun <- if (q == 1) function(ctrl) {
      ctrl$tau2.init <- NULL; ctrl$rho.init <- NULL
      rma.mv(b, S, random = ~ 1 | sid, method = method, data = dd, control = ctrl)
    } else function(ctrl) rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | sid,
                                 struct = "UN", method = method, data = dd, control = ctrl)
    def <- default_fit(fitfun)
    res <- run_all(fitfun, if (q == 1) def$sigma2 else def$tau2)
    fit <- res$best
    add(list(id = sprintf("alcohol_cvd_twostage_%s_%s", model, method), kind = "twostage",
             dataset = "dosresmeta alcohol_cvd (S = dosresmeta's covar.logrr)",
             call = if (q == 1) "rma.mv(b, S, random = ~ 1 | id)" else
               "rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | id, struct = 'UN')",
             input = list(model = model, method = method, b = b, S = S, study = sid),
             expected = list(beta = as.numeric(fit$beta), se = as.numeric(fit$se),
                             vb = unname(fit$vb), psi = psi_of(fit, q),
                             logLik = as.numeric(logLik(fit)), optimiser = fit$opt_name),
             runs = res$runs))
  }
}

# ---------------------------------------------------------------- one-stage random slopes
for (method in c("REML", "ML")) {
  fitfun <- function(ctrl) rma.mv(logrr, V, mods = ~ dose + dose2 - 1,
                                  random = ~ dose + dose2 - 1 | id, struct = "GEN",
                                  method = method, data = nr, control = ctrl)
  def <- default_fit(fitfun)
  res <- run_all(fitfun, def$tau2)
  fit <- res$best
  add(list(id = sprintf("alcohol_cvd_onestage_quadratic_%s", method), kind = "onestage",
           dataset = "dosresmeta alcohol_cvd (V = dosresmeta's covar.logrr)",
           call = "rma.mv(logrr, V, mods = ~ dose + dose2 - 1, random = ~ dose + dose2 - 1 | id, struct = 'GEN')",
           input = list(model = "quadratic", method = method),
           expected = list(beta = as.numeric(fit$beta), se = as.numeric(fit$se),
                           vb = unname(fit$vb), psi = psi_of(fit, 2),
                           logLik = as.numeric(logLik(fit)), optimiser = fit$opt_name),
           runs = res$runs))
}

writeLines(toJSON(list(generated_by = "tests/reference/make_dose_globalmax_reference.R",
                       metafor = as.character(packageVersion("metafor")),
                       R = R.version.string, cases = cases),
                  auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
           OUT)
message("wrote ", OUT, " (", length(cases), " cases)")
