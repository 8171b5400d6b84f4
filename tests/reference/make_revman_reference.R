# make_revman_reference.R -- the pooled totals of the synthetic RevMan 5 file
# tests/fixtures/revman/example.rm5 and of the real file fleiss1993_excerpt.rm5 (see the
# second part), computed with metafor as RevMan 5 computes them, for
# tests/test_revman.py (the reanalysis of every outcome is compared with these numbers, and
# the same numbers are written by hand into the totals attributes of the .rm5 file).
#
# Run from the repository root:   Rscript tests/reference/make_revman_reference.R
# Output:                         tests/reference/revman_reference.json
#
# The data are SYNTHETIC (a format example, made up; no trial data). They are repeated here
# from example.rm5 so that the script needs no XML package.
# RevMan 5 conventions (RevMan 5 statistical methods, as R meta's settings.meta("RevMan5")):
# Mantel-Haenszel estimates with 1/2 added to every cell of a table with a zero cell (and
# double-zero tables dropped); Q around the MH estimate with the inverse-variance study
# effects (1/2 added to zero-cell tables); random effects = DerSimonian-Laird tau2 from that
# Q and the inverse-variance weights, then an inverse-variance estimate; I2 = (Q - df) / Q.
# Deterministic: fixed data, no random numbers.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "revman_reference.json")
arr <- function(x) I(as.numeric(x))

revman_cells <- function(ai, n1i, ci, n2i) {
  bi <- n1i - ai; di <- n2i - ci
  zero <- ai == 0 | bi == 0 | ci == 0 | di == 0
  add <- ifelse(zero, 0.5, 0)
  list(ai = ai + add, bi = bi + add, ci = ci + add, di = di + add)
}

i2 <- function(q, df) if (q > 0) max(0, (q - df) / q) * 100 else 0

mh_total <- function(ai, n1i, ci, n2i, measure, random) {
  cc <- revman_cells(ai, n1i, ci, n2i)
  mh <- rma.mh(ai = cc$ai, bi = cc$bi, ci = cc$ci, di = cc$di, measure = measure,
               add = 0, to = "none")
  q <- as.numeric(mh$QE); df <- length(ai) - 1
  if (!random) {
    est <- as.numeric(mh$beta); se <- mh$se; tau2 <- 0
  } else {
    es <- escalc(measure, ai = cc$ai, bi = cc$bi, ci = cc$ci, di = cc$di, add = 0, to = "none")
    w <- 1 / es$vi
    tau2 <- max(0, (q - df) / (sum(w) - sum(w^2) / sum(w)))
    re <- rma(es$yi, es$vi, tau2 = tau2, method = "DL")
    est <- as.numeric(re$beta); se <- re$se
  }
  list(estimate = est, se = se, ci_low = est - qnorm(0.975) * se,
       ci_high = est + qnorm(0.975) * se, z = est / se, p_z = 2 * pnorm(-abs(est / se)),
       q = q, df = df, p_q = pchisq(q, df, lower.tail = FALSE), i2 = i2(q, df), tau2 = tau2,
       events_1 = sum(ai), total_1 = sum(n1i), events_2 = sum(ci), total_2 = sum(n2i))
}

iv_total <- function(res, yi_df) {
  q <- as.numeric(res$QE); df <- res$k - 1
  list(estimate = as.numeric(res$beta), se = res$se, ci_low = res$ci.lb, ci_high = res$ci.ub,
       z = res$zval, p_z = res$pval, q = q, df = df, p_q = res$QEp, i2 = i2(q, df),
       tau2 = res$tau2)
}

# Outcome 1.1: response, odds ratio, MH, fixed effect; subgroups low dose / high dose.
d11 <- data.frame(study = c("STD-Alpha-2001", "STD-Beta-2005", "STD-Gamma-2010", "STD-Delta-2015"),
                  subgroup = c(1, 1, 2, 2), ai = c(12, 20, 0, 15), n1i = c(50, 80, 30, 60),
                  ci = c(8, 15, 4, 9), n2i = c(50, 82, 31, 58))
o11 <- with(d11, mh_total(ai, n1i, ci, n2i, "OR", FALSE))
s11 <- lapply(1:2, function(g) with(d11[d11$subgroup == g, ],
                                     mh_total(ai, n1i, ci, n2i, "OR", FALSE)))

# Outcome 1.2: symptom score, mean difference, inverse variance, random effects (DL).
d12 <- data.frame(study = c("STD-Alpha-2001", "STD-Beta-2005", "STD-Gamma-2010"),
                  m1i = c(10.2, 9.8, 11.0), sd1i = c(4.1, 5.0, 3.9), n1i = c(48, 78, 29),
                  m2i = c(12.5, 11.1, 11.4), sd2i = c(4.4, 5.2, 4.0), n2i = c(47, 80, 30))
e12 <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
              data = d12)
o12 <- iv_total(rma(yi, vi, data = e12, method = "DL"))
o12$total_1 <- sum(d12$n1i); o12$total_2 <- sum(d12$n2i)

# Outcome 1.3: time to relapse, hazard ratio, generic inverse variance (log HR and its SE),
# fixed effect.
d13 <- data.frame(study = c("STD-Alpha-2001", "STD-Beta-2005", "STD-Delta-2015"),
                  yi = c(-0.223, -0.105, -0.357), sei = c(0.2, 0.15, 0.25))
o13 <- iv_total(rma(yi = d13$yi, sei = d13$sei, method = "FE"))

# Outcome 2.1: adverse events, risk ratio, MH, random effects.
d21 <- data.frame(study = c("STD-Alpha-2001", "STD-Delta-2015"), ai = c(9, 14),
                  n1i = c(50, 60), ci = c(5, 13), n2i = c(49, 61))
o21 <- with(d21, mh_total(ai, n1i, ci, n2i, "RR", TRUE))

# Test for subgroup differences (RevMan's Q, P_Q, I2_Q of the outcome): the inverse-variance
# heterogeneity of the subgroup estimates, Q_b = sum w_g (theta_g - theta_bar)^2, w_g = 1/se_g^2.
q_between <- function(groups) {
  est <- sapply(groups, `[[`, "estimate"); w <- 1 / sapply(groups, `[[`, "se")^2
  q <- sum(w * (est - sum(w * est) / sum(w))^2); df <- length(groups) - 1
  list(q = q, df = df, p_q = pchisq(q, df, lower.tail = FALSE), i2 = i2(q, df))
}
o11$between <- q_between(s11)

cases <- list(
  list(id = "1.1", measure = "OR", method = "MH", random = FALSE, total = o11,
       subgroups = list(s11[[1]], s11[[2]]),
       call = "rma.mh(measure = 'OR') on the RevMan cells (1/2 added to zero-cell tables)"),
  list(id = "1.2", measure = "MD", method = "IV", random = TRUE, total = o12,
       call = "rma(escalc('MD', ...), method = 'DL')"),
  list(id = "1.3", measure = "HR", method = "IV", random = FALSE, total = o13,
       call = "rma(yi = log HR, sei = SE, method = 'FE')"),
  list(id = "2.1", measure = "RR", method = "MH", random = TRUE, total = o21,
       call = "DL tau2 from rma.mh(measure = 'RR')$QE, then rma(yi, vi, tau2 = tau2)")
)
# --- A REAL RevMan 5 file: tests/fixtures/revman/fleiss1993_excerpt.rm5, an excerpt of
# inst/extdata/Fleiss1993.rm5 of R meta (github.com/guido-s/meta, commit
# 6f708f262e815d85d2178a7007c5953553e741e2), written by RevMan 5.0.23. Its numbers are
# repeated here from the file (DICH_DATA / CONT_DATA attributes).
# Outcome 1.1: aspirin after myocardial infarction, odds ratio, MH, fixed effect (no zero cells).
f11 <- data.frame(study = c("MRC-1", "CDP", "MRC-2", "GASP", "PARIS", "AMIS", "ISIS-2"),
                  ai = c(49, 44, 102, 32, 85, 246, 1570), n1i = c(615, 758, 832, 317, 810, 2267, 8587),
                  ci = c(67, 64, 126, 38, 52, 219, 1720), n2i = c(624, 771, 850, 309, 406, 2257, 8600))
r11 <- with(f11, mh_total(ai, n1i, ci, n2i, "OR", FALSE))
# Outcome 1.2: mental health treatment, SMD (RevMan 5: Hedges' g with J = 1 - 3/(4N - 9) and
# v = N/(n1 n2) + g^2/(2(N - 3.94))), inverse variance, fixed effect. RevMan left this
# outcome's totals empty in the file, so metafor's rma(method = "FE") is the only reference.
f12 <- data.frame(study = c("Davis", "Florell", "Gruen", "Hart", "Wilson"),
                  m1i = c(5.0, 4.9, 22.5, 12.5, 6.5), sd1i = c(4.7, 1.71, 3.44, 1.47, 0.76),
                  n1i = c(13, 30, 35, 20, 8), m2i = c(6.5, 6.1, 24.9, 12.3, 7.38),
                  sd2i = c(3.8, 2.3, 10.65, 1.66, 1.41), n2i = c(13, 50, 35, 20, 8))
f12 <- within(f12, {
  N <- n1i + n2i
  sp <- sqrt(((n1i - 1) * sd1i^2 + (n2i - 1) * sd2i^2) / (N - 2))
  g <- (1 - 3 / (4 * N - 9)) * (m1i - m2i) / sp
  v <- N / (n1i * n2i) + g^2 / (2 * (N - 3.94))
})
r12 <- iv_total(rma(f12$g, f12$v, method = "FE"))
real_cases <- list(
  list(id = "1.1", measure = "OR", method = "MH", random = FALSE, total = r11,
       call = "rma.mh(measure = 'OR') on the seven 2x2 tables (no zero cells)"),
  list(id = "1.2", measure = "SMD", method = "IV", random = FALSE, total = r12,
       call = "rma(g, v, method = 'FE') with RevMan 5's g and v")
)

write_fixture(OUT, list(script = "tests/reference/make_revman_reference.R",
                        R = R.version.string, metafor = as.character(packageVersion("metafor")),
                        note = paste("cases: synthetic RevMan 5 format example; real_cases: the",
                                     "real file fleiss1993_excerpt.rm5; estimates on the log",
                                     "scale for OR, RR and HR")),
              arrays = list(cases = cases, real_cases = real_cases))
