# make_extreme_reference.R -- metafor at the limits of floating point, for
# tests/test_extreme_inputs.py (issue 13: extreme finite inputs).
#
# Run from the repository root:   Rscript tests/reference/make_extreme_reference.R
# Output:                         tests/reference/extreme_reference.json
#
# Each case is self-contained (yi, vi, moderator x, method, control). A case metafor answers
# records its estimates; a case where metafor stops records its error message (the Python side
# must then raise ValueError). Cases metafor does not finish (ML/REML with vi ~ 1e300: Fisher
# scoring never meets an absolute threshold on steps of size 1e300) are not recorded.
# Doubles are written with %.17g (json_writer.R); NA / NaN / +-Inf -> null.

suppressPackageStartupMessages(library(metafor))
source(file.path("tests", "reference", "json_writer.R"))

OUT <- file.path("tests", "reference", "extreme_reference.json")
TIGHT <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-12)

y4 <- c(0.1, 0.3, 0.5, 0.2)
DATA <- list(
  `vi_1e-300` = list(yi = y4, vi = c(1e-300, 2e-300, 1.5e-300, 3e-300)),
  vi_1e300 = list(yi = y4, vi = c(1e300, 2e300, 1.5e300, 3e300)),
  yi_1e200 = list(yi = c(1e200, 2e200, -1e200, 0.5e200), vi = c(0.1, 0.2, 0.15, 0.3)),
  `reg_vi_1e-300` = list(yi = c(y4, 0.4), vi = c(1e-300, 2e-300, 1.5e-300, 3e-300, 2e-300),
                       x = c(1, 2, 3, 4, 5)),
  reg_vi_1e300 = list(yi = c(y4, 0.4), vi = c(1e300, 2e300, 1.5e300, 3e300, 2e300),
                      x = c(1, 2, 3, 4, 5)),
  reg_yi_1e200 = list(yi = c(1e200, 3e200, 5e200, 2e200, 4e200), vi = c(0.1, 0.2, 0.15, 0.3, 0.2),
                      x = c(1, 2, 3, 4, 5))
)
ALL <- c("DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
METHODS <- list(
  `vi_1e-300` = ALL, vi_1e300 = c("DL", "HE", "HS", "SJ", "PM", "EB"), yi_1e200 = ALL,
  `reg_vi_1e-300` = c("DL", "HE", "PM", "ML", "REML"), reg_vi_1e300 = c("DL", "HE", "PM"),
  reg_yi_1e200 = c("DL", "PM", "REML")
)

num <- function(x) as.numeric(x)
cases <- list()
for (nm in names(DATA)) for (m in METHODS[[nm]]) {
  d <- DATA[[nm]]
  # tight control where metafor converges with it; default control for vi ~ 1e300 (an absolute
  # tolerance of 1e-12 on tau^2 values of that size is never met)
  ctrl <- if (grepl("1e300", nm)) list() else TIGHT
  case <- list(name = paste(nm, m), yi = I(d$yi), vi = I(d$vi), method = m,
               x = if (is.null(d$x)) NULL else I(d$x), tight = length(ctrl) > 0)
  fit <- tryCatch(
    if (is.null(d$x)) rma(d$yi, d$vi, method = m, control = ctrl)
    else rma(d$yi, d$vi, mods = ~ d$x, method = m, control = ctrl),
    error = function(e) conditionMessage(e))
  if (is.character(fit)) {
    case$error <- fit
  } else {
    case$tau2 <- num(fit$tau2)
    case$se_tau2 <- num(fit$se.tau2)
    case$beta <- I(num(fit$b))
    case$se <- I(num(fit$se))
    case$qe <- num(fit$QE)
    case$i2 <- num(fit$I2)
    case$h2 <- num(fit$H2)
    if (is.null(d$x)) {
      ci <- confint(fit, control = if (length(ctrl)) list(tol = 1e-12) else list())$random
      case$tau2_ci <- I(num(ci[1, 2:3]))
      case$i2_ci <- I(num(ci[3, 2:3]))
    }
  }
  cases[[length(cases) + 1]] <- case
}

write_fixture(OUT, "tests/reference/make_extreme_reference.R (metafor 3.8-1)",
              arrays = list(cases = cases),
              objects = list(metafor = as.character(packageVersion("metafor"))))
