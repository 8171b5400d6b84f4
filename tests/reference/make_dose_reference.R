# make_dose_reference.R -- reference values for tests/test_dose_response.py
#
# Run from the repository root (after `.venv/bin/python tests/test_dose_response.py export`):
#     Rscript tests/reference/make_dose_reference.R
# Output: tests/reference/dose_reference.json
#
# Contents (every case holds its inputs, the R call and the expected values):
#   mv_*   metafor rma.mv(yi, V, mods = ~ <dose terms> - 1, random = ~ 1 | study [/ comp])
#          on generated multi-arm trials (shared-control covariance) and on the shipped
#          baclofen contrasts; linear, log1p, quadratic, restricted cubic spline (Hmisc
#          rcspline.eval, inclx = TRUE, norm = 2 = rms::rcs), REML and ML; predict(newmods=).
#   gl_*   Greenland-Longnecker covariance: a port of dosresmeta 2.x grl()/covar.logrr()
#          (dosresmeta is not installable here) iterated to a tight tolerance, on generated
#          case-control and incidence-rate studies; then the two-stage model
#          rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | study, struct = "UN").
#   gl_onestage_*  one-stage random coefficients (dosresmeta proc = "1stage"):
#          rma.mv(yi, V, mods = ~ dose [+ dose2] - 1, random = ~ dose [+ dose2] - 1 | study,
#          struct = "GEN").
#   cls_*  dose-class subgroups: rma() per class + rma(est, sei = se, method = "FE").
# Tight control: rel.tol = 1e-12 (nlminb), so 1e-6 relative comparisons are meaningful.
# Numbers are written with jsonlite digits = NA (15 significant digits).

suppressPackageStartupMessages({library(metafor); library(Hmisc); library(jsonlite)})
set.seed(20260422)
OUT <- file.path("tests", "reference", "dose_reference.json")
BACLOFEN <- file.path("tests", "reference", "data", "dose_baclofen.csv")
CTRL <- list(rel.tol = 1e-12, iter.max = 100000, eval.max = 100000)
cases <- list()
add <- function(case) cases[[length(cases) + 1]] <<- case

design <- function(dose, model, knots = NULL) {
  switch(model,
         linear = cbind(dose = dose),
         log = cbind(log_dose = log1p(dose)),
         quadratic = cbind(dose = dose, dose2 = dose^2),
         spline = { X <- rcspline.eval(dose, knots = knots, inclx = TRUE); colnames(X) <- NULL; X })
}

# nlminb with rel.tol = 1e-12 sometimes reports "false convergence" at the optimum of a
# flat likelihood; fall back to a slightly looser tolerance, and record which was used.
fit_mv <- function(intercept, yi, V, X, rform, method, dat) {
  for (tol in c(1e-12, 1e-10, 1e-8)) {
    ctrl <- modifyList(CTRL, list(rel.tol = tol))
    fit <- tryCatch(rma.mv(yi, V, mods = X, intercept = intercept, random = rform,
                           method = method, control = ctrl, data = dat),
                    error = function(e) NULL)
    if (!is.null(fit)) break
  }
  if (is.null(fit)) stop("rma.mv failed")
  # polish: restart at the estimate with optim(BFGS), keep whichever logLik is higher
  pol <- tryCatch(rma.mv(yi, V, mods = X, intercept = intercept, random = rform,
                         method = method, data = dat,
                         control = list(optimizer = "optim", optmethod = "BFGS",
                                        reltol = 1e-15, maxit = 10000,
                                        sigma2.init = pmax(fit$sigma2, 1e-10))),
                  error = function(e) NULL)
  if (!is.null(pol) && logLik(pol) > logLik(fit)) { pol$rel_tol <- paste(tol, "+ BFGS"); return(pol) }
  fit$rel_tol <- tol
  fit
}

mv_case <- function(id, dataset, yi, V, dose, study, model, method, random, intercept,
                    knots = NULL, newdose = c(0, 25, 50, 100, 150)) {
  message(id)
  X <- design(dose, model, knots)
  comp <- seq_along(yi)
  rform <- if (random == "study") ~ 1 | study else ~ 1 | study / comp
  fit <- fit_mv(intercept, yi, V, X, rform, method, data.frame(study, comp))
  Xn <- design(newdose, model, knots)
  if (intercept) Xn <- cbind(1, Xn)
  pr <- predict(fit, newmods = if (intercept) Xn[, -1, drop = FALSE] else Xn,
                intercept = intercept)
  add(list(id = id, kind = "rma.mv", dataset = dataset,
           call = sprintf("rma.mv(yi, V, mods = ~ %s, random = %s, method = '%s')",
                          paste(model, if (intercept) "" else "- 1"),
                          deparse(rform), method),
           input = list(yi = yi, V = V, dose = dose, study = as.character(study),
                        model = model, method = method, random = random,
                        intercept = intercept, knots = knots, newdose = newdose),
           expected = list(beta = as.numeric(fit$beta), se = as.numeric(fit$se),
                           vb = unname(fit$vb), sigma2 = as.numeric(fit$sigma2),
                           QE = fit$QE, QEp = fit$QEp, rel_tol = fit$rel_tol, QM = fit$QM, logLik = as.numeric(logLik(fit)),
                           pred = as.numeric(pr$pred), pred_se = as.numeric(pr$se))))
}

# ---------------------------------------------------------------- generated multi-arm trials
gen_multiarm <- function(n_studies = 14) {
  rows <- list()
  V <- NULL
  for (s in seq_len(n_studies)) {
    n_arms <- sample(1:3, 1, prob = c(.5, .3, .2))
    doses <- sort(sample(c(10, 20, 40, 60, 80, 120, 160), n_arms))
    n_c <- sample(40:120, 1); p_c <- runif(1, .2, .4)
    ci <- max(3, rbinom(1, n_c, p_c))
    u <- rnorm(1, 0, .25)
    block <- matrix(1 / ci + 1 / (n_c - ci), n_arms, n_arms)
    for (a in seq_len(n_arms)) {
      lo <- qlogis(p_c) + u + 0.9 * doses[a] / (40 + doses[a])
      n_t <- sample(40:120, 1); ai <- min(n_t - 3, max(3, rbinom(1, n_t, plogis(lo))))
      es <- escalc("OR", ai = ai, n1i = n_t, ci = ci, n2i = n_c)
      rows[[length(rows) + 1]] <- data.frame(study = paste0("S", s), dose = doses[a],
                                             yi = as.numeric(es$yi), vi = as.numeric(es$vi))
      block[a, a] <- as.numeric(es$vi)
    }
    V <- if (is.null(V)) block else as.matrix(bdiag_simple(V, block))
  }
  list(data = do.call(rbind, rows), V = V)
}
bdiag_simple <- function(A, B) {
  out <- matrix(0, nrow(A) + nrow(B), ncol(A) + ncol(B))
  out[seq_len(nrow(A)), seq_len(ncol(A))] <- A
  out[nrow(A) + seq_len(nrow(B)), ncol(A) + seq_len(ncol(B))] <- B
  out
}
g <- gen_multiarm()
gd <- g$data
knots_g <- as.numeric(quantile(gd$dose, c(.1, .5, .9)))
for (method in c("REML", "ML")) {
  for (model in c("linear", "log", "quadratic", "spline")) {
    mv_case(sprintf("mv_gen_%s_%s", model, method), "generated multi-arm", gd$yi, g$V,
            gd$dose, gd$study, model, method, "study", FALSE,
            if (model == "spline") knots_g else NULL)
  }
  mv_case(sprintf("mv_gen_linear_intercept_%s", method), "generated multi-arm", gd$yi, g$V,
          gd$dose, gd$study, "linear", method, "study", TRUE)
  for (model in c("linear", "spline")) {
    mv_case(sprintf("mv_gen_%s_nested_%s", model, method), "generated multi-arm", gd$yi,
            g$V, gd$dose, gd$study, model, method, "study/comparison", FALSE,
            if (model == "spline") knots_g else NULL)
  }
}

# ---------------------------------------------------------------- shipped baclofen contrasts
bac <- read.csv(BACLOFEN, stringsAsFactors = FALSE)
for (an in c("abstinence_OR_correlated", "dropout_RR_correlated")) {
  d <- bac[bac$analysis == an, ]
  V <- as.matrix(d[, paste0("V", seq_len(nrow(d)))])
  for (metric in c("dose_target", "dose_max")) {
    models <- if (grepl("abstinence", an)) c("linear", "log", "quadratic", "spline")
              else c("linear", "log", "quadratic")
    for (method in c("REML", "ML")) for (model in models) {
      kn <- if (model == "spline") as.numeric(quantile(d[[metric]], c(.1, .5, .9))) else NULL
      if (model == "spline" && length(unique(kn)) < 3) {  # too few distinct doses for knots
        message("skipped ", an, " ", metric, " spline: knots ", paste(kn, collapse = ", "))
        next
      }
      mv_case(sprintf("mv_baclofen_%s_%s_%s_%s", an, metric, model, method),
              paste("baclofen", an), d$yi, V, d[[metric]], d$study, model, method, "study",
              FALSE, kn)
    }
  }
}

# ---------------------------------------------------------------- dose classes (split)
d <- bac[bac$analysis == "dropout_RR_split", ]
cls <- cut(d$dose_target, c(-Inf, 30, 80, Inf), labels = c("<=30", "31-80", ">80"))
per <- lapply(levels(cls), function(l) {
  fit <- rma(d$yi[cls == l], d$vi[cls == l], method = "REML", control = list(threshold = 1e-12,
                                                                               maxiter = 10000))
  c(k = fit$k, est = as.numeric(fit$beta), se = fit$se, tau2 = fit$tau2, QE = fit$QE)
})
per <- do.call(rbind, per)
fe <- rma(per[, "est"], sei = per[, "se"], method = "FE")
add(list(id = "cls_baclofen_dropout_RR_split", kind = "classes", dataset = "baclofen dropout",
         call = "rma(yi, vi, subset = class) per class; rma(est, sei = se, method = 'FE')",
         input = list(yi = d$yi, vi = d$vi, dose = d$dose_target),
         expected = list(group = levels(cls), k = per[, "k"], estimate = per[, "est"],
                         se = per[, "se"], tau2 = per[, "tau2"], q = per[, "QE"],
                         qb = fe$QE, qb_pvalue = fe$QEp)))

# ---------------------------------------------------------------- Greenland-Longnecker
# Port of dosresmeta 2.x grl() (R/covariance.R) for cc and ir; tolerance tightened.
grl_port <- function(y, v, cases, n, type, tol = 1e-22) {
  Ax <- Axp <- cases
  for (iter in 1:100) {
    A0 <- sum(cases) - sum(Ax[v != 0])
    cx <- if (type != "ir") 1 / Ax + 1 / (n - Ax) else 1 / Ax
    e <- if (type != "ir")
      y[v != 0] + log(A0) + log(n[v != 0] - Ax[v != 0]) - log(Ax[v != 0]) - log(n[v == 0] - A0)
    else y[v != 0] + log(A0) + log(n[v != 0]) - log(Ax[v != 0]) - log(n[v == 0])
    cx[v == 0] <- if (type != "ir") 1 / A0 + 1 / (n[v == 0] - A0) else 1 / A0
    H <- diag(cx[v != 0] + cx[v == 0], nrow = sum(v != 0))
    H[upper.tri(H)] <- H[lower.tri(H)] <- cx[v == 0]
    Axp[v == 0] <- A0
    Axp[v != 0] <- Ax[v != 0] + solve(H) %*% e
    delta <- sum((Axp[v != 0] - Ax[v != 0])^2)
    Ax <- Axp
    if (delta < tol) break
  }
  Axp[v == 0] <- sum(cases) - sum(Axp[v != 0])
  cbind(A = Axp, N = n)
}
covar_port <- function(y, v, cases, n, type) {
  ps <- grl_port(y, v, cases, n, type)
  s0 <- switch(type, cc = 1 / ps[v == 0, 1] + 1 / (ps[v == 0, 2] - ps[v == 0, 1]),
               ir = 1 / ps[v == 0, 1])
  si <- s0 + switch(type, cc = 1 / ps[v != 0, 1] + 1 / (ps[v != 0, 2] - ps[v != 0, 1]),
                    ir = 1 / ps[v != 0, 1])
  r <- s0 / sqrt(tcrossprod(si)); diag(r) <- 1
  sqrt(tcrossprod(v[v != 0])) * r
}
gen_gl <- function(n_studies = 9) {
  out <- list()
  for (s in seq_len(n_studies)) {
    type <- if (s %% 3 == 0) "ir" else "cc"
    doses <- c(0, sort(sample(c(5, 10, 15, 20, 30, 40, 60), 3)))
    b1 <- rnorm(1, 0.02, 0.01); b2 <- rnorm(1, -1e-4, 1e-4)
    n <- sample(150:600, 4, replace = TRUE)
    if (type == "cc") {
      odds <- exp(log(0.4) + b1 * doses + b2 * doses^2)
      cases <- pmax(5, rbinom(4, n, odds / (1 + odds)))
      y <- log(cases / (n - cases)) - log(cases[1] / (n[1] - cases[1]))
      v <- 1 / cases + 1 / (n - cases) + 1 / cases[1] + 1 / (n[1] - cases[1])
    } else {
      n <- n * 10
      cases <- pmax(5, rpois(4, n * 0.01 * exp(b1 * doses + b2 * doses^2)))
      y <- log(cases / n) - log(cases[1] / n[1])
      v <- 1 / cases + 1 / cases[1]
    }
    y <- y + c(0, rnorm(3, 0, 0.05)); v <- v * c(0, runif(3, 1.0, 1.3))   # "adjusted"
    out[[s]] <- data.frame(study = paste0("G", s), type = type, dose = doses, cases = cases,
                           n = n, yi = y, vi = v)
  }
  do.call(rbind, out)
}
gl <- gen_gl()
S_list <- lapply(split(gl, factor(gl$study, unique(gl$study))), function(x)
  covar_port(x$yi, x$vi, x$cases, x$n, x$type[1]))
add(list(id = "gl_covariance_generated", kind = "gl", dataset = "generated cc/ir studies",
         call = "dosresmeta:::covar.logrr port (grl Newton to delta < 1e-22, at most 100 steps)",
         input = as.list(gl), expected = list(S = lapply(S_list, unname))))

for (model in c("linear", "quadratic")) for (method in c("REML", "ML")) {
  b <- NULL; S <- NULL; coef <- NULL; sid <- NULL
  for (s in unique(gl$study)) {
    x <- gl[gl$study == s & gl$vi != 0, ]
    X <- design(x$dose, model)
    Si <- S_list[[s]]; W <- solve(Si)
    vb <- solve(t(X) %*% W %*% X); bs <- vb %*% t(X) %*% W %*% x$yi
    b <- c(b, bs); S <- if (is.null(S)) vb else bdiag_simple(S, vb)
    coef <- c(coef, seq_len(ncol(X))); sid <- c(sid, rep(s, ncol(X)))
  }
  dd <- data.frame(b = b, coef = factor(coef), sid = sid)
  fit <- NULL
  for (tol in c(1e-12, 1e-10, 1e-8)) {
    ctrl <- modifyList(CTRL, list(rel.tol = tol))
    fit <- tryCatch(if (model == "linear")
      rma.mv(b, S, random = ~ 1 | sid, method = method, data = dd, control = ctrl)
      else rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | sid, struct = "UN",
                  method = method, data = dd, control = ctrl), error = function(e) NULL)
    if (!is.null(fit)) { fit$rel_tol <- tol; break }
  }
  if (model != "linear") {  # polish with optim(BFGS) from the nlminb estimate
    pol <- tryCatch(rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | sid, struct = "UN",
                           method = method, data = dd,
                           control = list(optimizer = "optim", optmethod = "BFGS",
                                          reltol = 1e-15, maxit = 10000,
                                          tau2.init = fit$tau2, rho.init = fit$rho)),
                    error = function(e) NULL)
    if (!is.null(pol) && logLik(pol) > logLik(fit)) {
      pol$rel_tol <- paste(fit$rel_tol, "+ BFGS"); fit <- pol
    }
  }
  psi <- if (model == "linear") matrix(fit$sigma2) else {
    r <- fit$rho; t2 <- fit$tau2
    matrix(c(t2[1], r * sqrt(t2[1] * t2[2]), r * sqrt(t2[1] * t2[2]), t2[2]), 2)
  }
  add(list(id = sprintf("gl_twostage_%s_%s", model, method), kind = "twostage",
           dataset = "generated cc/ir studies",
           call = "per-study GLS; rma.mv(b, S, mods = ~ coef - 1, random = ~ coef | study, struct = 'UN')",
           input = list(model = model, method = method),
           expected = list(beta = as.numeric(fit$beta), se = as.numeric(fit$se),
                           vb = unname(fit$vb), psi = psi, QE = fit$QE, rel_tol = fit$rel_tol,
                           logLik = as.numeric(logLik(fit)), b = b)))
}

# one-stage random-coefficients model (dosresmeta proc = "1stage"): metafor struct = "GEN"
nr <- gl[gl$vi != 0, ]
Vgl <- NULL
for (s in unique(gl$study)) Vgl <- if (is.null(Vgl)) S_list[[s]] else bdiag_simple(Vgl, S_list[[s]])
for (model in c("linear", "quadratic")) for (method in c("REML", "ML")) {
  nr$dose2 <- nr$dose^2
  form <- if (model == "linear") ~ dose - 1 else ~ dose + dose2 - 1
  rform <- if (model == "linear") ~ dose - 1 | study else ~ dose + dose2 - 1 | study
  fit <- NULL
  for (tol in c(1e-12, 1e-10, 1e-8)) {
    fit <- tryCatch(rma.mv(yi, Vgl, mods = form, random = rform, struct = "GEN",
                           method = method, data = nr,
                           control = modifyList(CTRL, list(rel.tol = tol))),
                    error = function(e) NULL)
    if (!is.null(fit)) { fit$rel_tol <- tol; break }
  }
  add(list(id = sprintf("gl_onestage_%s_%s", model, method), kind = "onestage",
           dataset = "generated cc/ir studies",
           call = sprintf("rma.mv(yi, V, mods = %s, random = %s, struct = 'GEN', method = '%s')",
                          deparse(form), deparse(rform), method),
           input = list(model = model, method = method),
           expected = list(beta = as.numeric(fit$beta), se = as.numeric(fit$se),
                           vb = unname(fit$vb), psi = unname(fit$G), QE = fit$QE,
                           rel_tol = fit$rel_tol, logLik = as.numeric(logLik(fit)))))
}

writeLines(toJSON(list(generated_by = "tests/reference/make_dose_reference.R",
                       metafor = as.character(packageVersion("metafor")),
                       R = R.version.string, cases = cases),
                  auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
           OUT)
message("wrote ", OUT, " (", length(cases), " cases)")
