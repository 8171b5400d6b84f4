# make_global_max_reference.R -- metafor fits on data sets whose (restricted) likelihood for
# tau^2 has its global maximum in the interior although the score at tau2 = 0 is not positive.
#
# Run from the repository root:
#   Rscript tests/reference/make_global_max_reference.R            # re-uses the stored inputs
#   Rscript tests/reference/make_global_max_reference.R CASES.json # new inputs (from
#       python -m benchmarks.global_max export --cases ... --out CASES.json)
# Output: tests/reference/global_max_reference.json
#
# Per case: the inputs at full precision, metafor's rma() fit (tau2, beta, se, logLik), its
# logLik with tau2 = 0 fixed, an independent brute-force maximum of the same log-likelihood
# (dense grid in u = log(1 + tau2 / min(vi)) up to a bound beyond which the score is negative,
# then optimize() around every grid local maximum), and whether metafor is at that global
# maximum. Where it is not, "expected" is the brute-force answer (beta/se from rma() with
# tau2 fixed at the brute-force value); otherwise "expected" is metafor's own fit.
# Doubles are written with sprintf("%.17g"), as in make_reference.R.

suppressPackageStartupMessages({ library(metafor); library(jsonlite) })

OUT  <- file.path("tests", "reference", "global_max_reference.json")
CTRL <- list(threshold = 1e-12, maxiter = 10000)
CTRL_S <- "control=list(threshold=1e-12, maxiter=10000)"
GRID <- 20000
TOL  <- 1e-8

args <- commandArgs(trailingOnly = TRUE)
src <- if (length(args) >= 1) args[1] else OUT
message("inputs from ", src)
raw <- fromJSON(src, simplifyVector = FALSE)
if (!is.null(raw$cases)) {
  # stored reference: take the inputs back (the BCG cases are rebuilt from dat.bcg below)
  raw <- Filter(function(cc) cc$origin$source != "dat.bcg", raw$cases)
  raw <- lapply(raw, function(cc) list(id = cc$id, kind = cc$kind, method = cc$method,
                                       origin = cc$origin, yi = cc$input$yi,
                                       vi = cc$input$vi, mods = cc$input$mods))
}
as_num <- function(x) as.numeric(unlist(x))

# ------------------------------------------------------------------------------------------
# metafor's log-likelihood (rma.uni, REMLf = TRUE) and the brute-force maximiser
# ------------------------------------------------------------------------------------------
loglik <- function(t, yi, vi, X, method) {
  # via the QR decomposition of W^(1/2) X (X'WX is never formed: with vi from 1e-6 to 1e3 its
  # condition number is ~1e9 and determinant(X'WX) would carry rounding noise of ~1e-8)
  k <- length(yi); p <- ncol(X)
  sw <- sqrt(1 / (vi + t))
  q <- qr(sw * X)
  rss <- sum(qr.resid(q, sw * yi)^2)
  if (method == "ML") return(-0.5 * (k * log(2 * pi) + sum(log(vi + t)) + rss))
  -0.5 * ((k - p) * log(2 * pi) - 2 * sum(log(abs(diag(qr.R(qr(X)))))) + sum(log(vi + t)) +
          2 * sum(log(abs(diag(qr.R(q))))) + rss)
}

upper_bound <- function(yi, vi, X) {
  # score < 0 for tau2 > T: ||W r||^2 <= w_max^2 SS_ols and tr P >= (k - p) w_min
  k <- length(yi); p <- ncol(X)
  ss <- sum(lm.fit(X, yi)$residuals^2); df <- max(k - p, 1); d <- max(vi) - min(vi)
  max((ss + sqrt(ss^2 + 4 * df * ss * d)) / (2 * df) - min(vi), 0)
}

brute_force <- function(yi, vi, X, method) {
  c0 <- min(vi); T <- upper_bound(yi, vi, X)
  umax <- log1p(max(1.05 * T, 1e-3 * c0) / c0)
  u <- seq(0, umax, length.out = GRID)
  f <- function(uu) loglik(c0 * expm1(uu), yi, vi, X, method)
  g <- vapply(u, f, 0)
  j <- which(g[2:(GRID - 1)] >= g[1:(GRID - 2)] & g[2:(GRID - 1)] >= g[3:GRID]) + 1
  dg <- diff(g); dg <- dg[abs(dg) > 1e-12 * (1 + abs(g[1]))]
  modes <- sum(head(dg, -1) > 0 & tail(dg, -1) < 0) + (length(dg) == 0 || dg[1] < 0)
  best_u <- 0; best <- g[1]
  for (jj in unique(c(j, max(2, min(which.max(g), GRID - 1))))) {
    o <- optimize(f, c(u[jj - 1], u[jj + 1]), maximum = TRUE, tol = 1e-13)
    if (o$objective > best) { best <- o$objective; best_u <- o$maximum }
  }
  list(tau2 = c0 * expm1(best_u), logLik = best, n_local_max = modes, T = T,
       top_of_grid = which.max(g) == GRID)
}

# ------------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------------
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)[1]
arr <- function(x) I(as.numeric(x))

fit_case <- function(id, kind, method, origin, yi, vi, mods) {
  X <- cbind(intrcpt = rep(1, length(yi)), if (is.null(mods)) NULL else as.matrix(mods))
  call <- if (is.null(mods)) sprintf("rma(yi, vi, method='%s', %s)", method, CTRL_S) else
    sprintf("rma(yi, vi, mods=~%s, method='%s', %s)", paste(colnames(mods), collapse = " + "),
            method, CTRL_S)
  rfit <- function(...) {
    a <- list(yi = yi, vi = vi, method = method, ...)
    if (!is.null(mods)) a$mods <- as.matrix(mods)
    do.call(rma, a)
  }
  warns <- character(0)
  quiet <- function(expr) withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  fit <- tryCatch(quiet(rfit(control = CTRL)), error = function(e) conditionMessage(e))
  fit0 <- quiet(rfit(tau2 = 0))
  bf <- brute_force(yi, vi, X, method)
  if (bf$top_of_grid) stop(id, ": brute-force maximum at the top of the grid")
  mf <- if (is.character(fit)) list(error = fit) else
    list(tau2 = num(fit$tau2), beta = arr(fit$beta), se = arr(fit$se),
         logLik = num(logLik(fit)),
         logLik_formula = loglik(fit$tau2, yi, vi, X, method))
  # metafor at the global maximum: both sides evaluated with loglik() above (logLik(fit) is
  # computed from X'WX and differs from it by up to ~1e-8 on the most extreme cases)
  at_global <- !is.character(fit) && mf$logLik_formula >= bf$logLik - TOL
  if (at_global) {
    expected <- c(mf[c("tau2", "beta", "se", "logLik")], source = "metafor")
  } else {
    fb <- quiet(rfit(tau2 = bf$tau2))
    expected <- list(tau2 = bf$tau2, beta = arr(fb$beta), se = arr(fb$se),
                     logLik = num(logLik(fb)),
                     source = "brute force (beta, se: rma() with tau2 fixed at its maximiser)")
  }
  message(sprintf("%-30s metafor tau2 %-12.6g logLik %-14.10g | brute force tau2 %-12.6g logLik %-14.10g %s",
                  id, num(mf$tau2), num(mf$logLik), bf$tau2, bf$logLik,
                  if (at_global) "" else "<- metafor not at the global maximum"))
  case <- list(id = id, kind = kind, method = method, origin = origin, call = call,
       input = list(yi = arr(yi), vi = arr(vi),
                    mods = if (is.null(mods)) NULL else lapply(as.list(as.data.frame(mods)), arr)),
       metafor = mf,
       metafor_tau2_0 = list(logLik = num(logLik(fit0)), beta = arr(fit0$beta),
                             logLik_formula = loglik(0, yi, vi, X, method)),
       metafor_profile = list(logLik_at_tau2 = num(mf$logLik), logLik_at_0 = num(logLik(fit0)),
                              interior_beats_0 = num(mf$logLik) > num(logLik(fit0))),
       brute_force = list(tau2 = bf$tau2, logLik = bf$logLik, n_local_max = bf$n_local_max,
                          upper_bound = bf$T),
       metafor_at_global_max = at_global,
       expected = expected)
  if (length(warns)) case$r_warnings <- I(unique(warns))
  case
}

cases <- list()
for (cc in raw) {
  mods <- if (is.null(cc$mods) || length(cc$mods) == 0) NULL else
    as.data.frame(lapply(cc$mods, as_num))
  cases[[length(cases) + 1]] <- fit_case(cc$id, cc$kind, cc$method, cc$origin, as_num(cc$yi),
                                         as_num(cc$vi), mods)
}

# BCG (log RR), mods = ~ ablat + alloc, as dummy-coded numeric columns (reference: alternate)
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bmods <- data.frame(ablat = bcg$ablat,
                    allocrandom = as.numeric(bcg$alloc == "random"),
                    allocsystematic = as.numeric(bcg$alloc == "systematic"))
for (m in c("ML", "REML")) {
  cases[[length(cases) + 1]] <- fit_case(
    paste0("bcg/RR/ablat+alloc/", m), "metareg", m,
    list(source = "dat.bcg", note = "escalc('RR', tpos, tneg, cpos, cneg); mods = ~ ablat + alloc"),
    as.numeric(bcg$yi), as.numeric(bcg$vi), bmods)
}

# ------------------------------------------------------------------------------------------
# JSON writer (full double precision, %.17g) -- as in make_reference.R
# ------------------------------------------------------------------------------------------
source(file.path("tests", "reference", "json_writer.R"))

ids <- vapply(cases, function(cc) cc$id, "")
if (anyDuplicated(ids)) stop("duplicate case ids: ", paste(ids[duplicated(ids)], collapse = ", "))
n_off <- sum(!vapply(cases, function(cc) cc$metafor_at_global_max, TRUE))
generator <- list(
  script = "tests/reference/make_global_max_reference.R",
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  note = paste0(
    "rma(yi, vi[, mods], method, ", CTRL_S, "); logLik = metafor's logLik(fit) (REMLf = TRUE). ",
    "metafor_tau2_0: rma(..., tau2 = 0). brute_force: ", GRID, " points uniform in ",
    "u = log1p(tau2 / min(vi)) on [0, log1p(1.05 T / min(vi))], T a bound beyond which the ",
    "score is negative, optimize(tol = 1e-13) around every grid local maximum. ",
    "metafor_at_global_max: loglik(metafor's tau2) >= brute-force max - 1e-8 (both by the QR formula);  where false, expected is the ",
    "brute-force answer (", n_off, " cases). mods are numeric design columns (intercept added). ",
    "Doubles written with %.17g."))

write_fixture(OUT, generator, list(cases = cases))
n <- length(cases)
message("wrote ", n, " cases to ", OUT, " (metafor not at the global maximum in ", n_off, ")")
