"""Named tolerances of the test suite, one per kind of quantity, each with its reason.

Use these instead of bare numbers, so a comparison says what kind of value it checks and a
reader can see why it may differ by that much. Tightening one is always fine; loosening one
needs a reason written here.
"""

#: Closed forms computed by the same formula in double precision (escalc effect sizes and
#: variances, Greenland-Longnecker and shared-control covariances, combined arms): only the
#: order of floating-point operations differs, so they agree to rounding.
CLOSED_FORM = 1e-12

#: Closed forms against metafor's values as stored in the JSON fixtures: R writes 15
#: significant digits and sums in another order, which costs a few more digits.
CLOSED_FORM_FIXTURE = 1e-10

#: Iterative estimates against metafor (ML, REML, EB, PM, SJ, Q-profile limits, and all that
#: depends on tau^2): each program stops its own iteration (metafor run with threshold and
#: tol 1e-12); 1e-6 relative is the project's requirement for what both reach.
ITERATIVE = 1e-6

#: Absolute floor for values that are mathematically 0 (an estimate of exactly 0, tau^2 = 0):
#: either program returns rounding noise of about 1e-17 there, where a relative test means
#: nothing.
ZERO = 1e-12

#: Published numbers printed to 4 decimals (papers, metafor's printed output): half a unit
#: in the last printed place.
PRINTED_4_DECIMALS = 5e-5

#: Published numbers printed to 7 significant digits: relative half a unit in the last
#: place, with room for the value closest to a power of ten.
PRINTED_7_SIGNIFICANT = 2e-6
