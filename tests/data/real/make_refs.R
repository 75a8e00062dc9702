# lme4 reference numbers for four data sets that ship with R (package datasets).
# A data generator, not a dependency: the tests read only the files it writes.
#
# usage (from anywhere):  Rscript tests/data/real/make_refs.R [OUTDIR]
#   OUTDIR defaults to the folder of this script.
# needs: R with lme4 and jsonlite (Debian: r-base-core r-cran-lme4 r-cran-jsonlite)
#
# For each data set it writes OUTDIR/<name>/data.csv (y, x and cluster columns with
# R's names, rows in R's order, numbers as %.17g, cluster as its character label)
# and OUTDIR/<name>/lme4.json (see the "layout" entry of the JSON for the keys).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args = commandArgs(trailingOnly = TRUE)
here = local({
  f = sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
out = if (length(args)) args[1] else here

sets = list(
  ChickWeight = list(y = "weight", x = "Time", g = "Chick"),
  Orange = list(y = "circumference", x = "age", g = "Tree"),
  CO2 = list(y = "uptake", x = "conc", g = "Plant"),
  Loblolly = list(y = "height", x = "age", g = "Seed")
)

TIGHT = list(rhobeg = 2e-4, rhoend = 2e-9, maxfun = 1e5)
tight_control = function() lmerControl(optimizer = "bobyqa", optCtrl = TIGHT)
NM_TIGHT = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e5)

# ---------------------------------------------------------------------------------------
# fitting with everything lme4 says recorded

# lmer() that keeps its warnings and messages instead of printing them
quiet_lmer = function(...) {
  warns = character(0)
  msgs = character(0)
  fit = withCallingHandlers(
    lmer(...),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(fit = fit, warnings = warns, messages = msgs)
}

crit = function(fit) {
  if (isREML(fit)) as.numeric(REMLcrit(fit)) else as.numeric(deviance(fit))
}

describe = function(run, g, slope_random) {
  fit = run$fit
  fe = fixef(fit)
  V = as.matrix(vcov(fit))
  vc = VarCorr(fit)[[1]]
  re = matrix(as.numeric(vc), nrow(vc), ncol(vc))
  cf = coef(fit)[[g]]
  oi = fit@optinfo
  res = list(
    criterion = crit(fit),
    theta = I(unname(as.numeric(getME(fit, "theta")))),
    fixed = I(unname(as.numeric(fe))),
    fixed_names = I(names(fe)),
    se = I(unname(sqrt(diag(V)))),
    fixed_cov = unname(V),
    re_cov = if (slope_random) unname(re) else NULL,
    re_var = if (!slope_random) as.numeric(re) else NULL,
    sigma2 = sigma(fit)^2,
    singular = isSingular(fit),
    coef = Filter(Negate(is.null), list(
      cluster = I(rownames(cf)),
      intercept = I(unname(as.numeric(cf[, 1]))),
      slope = if (ncol(cf) > 1) I(unname(as.numeric(cf[, 2]))) else NULL
    )),
    optimizer = oi$optimizer,
    optimizer_code = oi$conv$opt,
    optimizer_message = if (is.null(oi$message)) "" else oi$message,
    feval = oi$feval,
    lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
    warnings = I(unique(run$warnings)),
    messages = I(unique(run$messages))
  )
  res[!vapply(res, is.null, logical(1))]
}

# starting thetas for the restarted tight fits, scaled by sd(x) where theta has x's units
start_grid = function(sx, n_theta) {
  if (n_theta == 1) return(lapply(c(0.01, 0.1, 1, 10, 100), function(t) t))
  g = expand.grid(t1 = c(0.1, 1, 10), t2 = c(-1, 0, 1), t3 = c(0.1, 1, 10))
  lapply(seq_len(nrow(g)), function(i) c(g$t1[i], g$t2[i] / sx, g$t3[i] / sx))
}

fit_one = function(formula, df, g, reml, slope_random, sx) {
  default = quiet_lmer(formula, data = df, REML = reml)
  tight0 = quiet_lmer(formula, data = df, REML = reml, control = tight_control())
  n_theta = length(getME(default$fit, "theta"))
  runs = list(list(label = "lme4 start", run = tight0))
  starts = c(list(getME(default$fit, "theta")), start_grid(sx, n_theta))
  labels = c("default fit's theta", rep("grid", length(starts) - 1))
  for (i in seq_along(starts)) {
    r = tryCatch(
      quiet_lmer(formula, data = df, REML = reml, control = tight_control(),
                 start = list(theta = starts[[i]])),
      error = function(e) NULL
    )
    if (!is.null(r)) runs[[length(runs) + 1]] = list(label = labels[i], start = starts[[i]], run = r)
  }
  nm = tryCatch(
    quiet_lmer(formula, data = df, REML = reml,
               control = lmerControl(optimizer = "Nelder_Mead", optCtrl = NM_TIGHT)),
    error = function(e) NULL
  )
  if (!is.null(nm)) runs[[length(runs) + 1]] = list(label = "Nelder_Mead tight from lme4 start", run = nm)
  crits = vapply(runs, function(r) crit(r$run$fit), numeric(1))
  best = which.min(crits)
  tight = describe(runs[[best]]$run, g, slope_random)
  tight$control = "bobyqa rhobeg=2e-4 rhoend=2e-9 maxfun=1e5; restarts from other thetas and a tight Nelder_Mead; lowest criterion kept"
  tight$start = runs[[best]]$label
  if (!is.null(runs[[best]]$start)) tight$start_theta = I(as.numeric(runs[[best]]$start))
  tight$runs = lapply(runs, function(r) {
    x = list(start = r$label, criterion = crit(r$run$fit), theta = I(as.numeric(getME(r$run$fit, "theta"))))
    if (!is.null(r$start)) x$start_theta = I(as.numeric(r$start))
    x
  })
  d = describe(default, g, slope_random)
  d$control = "lmerControl() defaults"
  list(default = d, tight = tight)
}

both_methods = function(formula, df, g, slope_random, sx) {
  list(
    REML = fit_one(formula, df, g, TRUE, slope_random, sx),
    ML = fit_one(formula, df, g, FALSE, slope_random, sx)
  )
}

references = function(df, y, x, g) {
  sx = sd(df[[x]])
  full = as.formula(sprintf("%s ~ %s + (%s | %s)", y, x, x, g))
  ri_x = as.formula(sprintf("%s ~ %s + (1 | %s)", y, x, g))
  ri_1 = as.formula(sprintf("%s ~ 1 + (1 | %s)", y, g))
  ols = coef(lme4::lmList(as.formula(sprintf("%s ~ %s | %s", y, x, g)), df))
  list(
    n_obs = nrow(df),
    n_clusters = nlevels(df[[g]]),
    fits = both_methods(full, df, g, TRUE, sx),
    ols = list(
      cluster = I(rownames(ols)),
      intercept = I(unname(as.numeric(ols[, 1]))),
      slope = I(unname(as.numeric(ols[, 2])))
    ),
    random_intercept = list(
      "y ~ x + (1 | g)" = both_methods(ri_x, df, g, FALSE, sx),
      "y ~ 1 + (1 | g)" = both_methods(ri_1, df, g, FALSE, sx)
    )
  )
}

LAYOUT = paste(
  "fits/{REML,ML}/{default,tight}: the model y ~ x + (x | g).",
  "default = lmer() with lmerControl() defaults; tight = best (lowest criterion) of bobyqa",
  "(rhobeg 2e-4, rhoend 2e-9, maxfun 1e5) from lme4's start, from the default fit's theta and",
  "from a grid of thetas, and a tight Nelder_Mead; 'start' names the winner, 'runs' lists all.",
  "criterion: REMLcrit() for REML, deviance() for ML (both -2 log-likelihood).",
  "theta: getME(fit, 'theta'); fixed/se/fixed_cov: fixef, sqrt(diag(vcov)), vcov;",
  "re_cov: VarCorr 2x2 (random_intercept fits: re_var); sigma2: sigma(fit)^2;",
  "coef: coef(fit) per cluster, in R's factor-level order, cluster labels as strings.",
  "ols: lme4::lmList per-cluster OLS. random_intercept/<formula>/{REML,ML}/{default,tight}:",
  "same fields for y ~ x + (1 | g) and y ~ 1 + (1 | g) (coef slope = common fixed slope).",
  "warnings/messages/lme4_messages: what lme4 reported (convergence checks, singular fit)."
)

# jsonlite writes at most 15 significant digits: write doubles as %.17g JSON text
# (round-trips exactly); vectors wrapped in I() and matrices stay arrays, NA/NaN -> null
full_precision = function(x) {
  num = function(v) ifelse(is.finite(v), sprintf("%.17g", v), "null")
  verbatim = function(s) structure(s, class = "json")
  if (is.list(x)) {
    cls = class(x)
    x = lapply(x, full_precision)
    if ("AsIs" %in% cls) class(x) = cls
    return(x)
  }
  if (!is.double(x)) return(x)
  if (is.matrix(x)) {
    rows = apply(x, 1, function(r) paste0("[", paste(num(r), collapse = ", "), "]"))
    return(verbatim(paste0("[", paste(rows, collapse = ", "), "]")))
  }
  if (length(x) == 1 && !inherits(x, "AsIs")) return(verbatim(num(x)))
  verbatim(paste0("[", paste(num(x), collapse = ", "), "]"))
}

write_set = function(name, spec) {
  dir = file.path(out, name)
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  raw = as.data.frame(get(name, envir = as.environment("package:datasets")))
  cols = names(raw)[names(raw) %in% c(spec$y, spec$x, spec$g)]
  df = raw[, cols]
  rownames(df) = NULL
  txt = df
  for (v in c(spec$y, spec$x)) txt[[v]] = sprintf("%.17g", df[[v]])
  txt[[spec$g]] = as.character(df[[spec$g]])
  path = file.path(dir, "data.csv")
  write.csv(txt, path, row.names = FALSE, quote = FALSE)
  back = read.csv(path, colClasses = "character")
  stopifnot(
    identical(as.numeric(back[[spec$y]]), as.numeric(df[[spec$y]])),
    identical(as.numeric(back[[spec$x]]), as.numeric(df[[spec$x]])),
    identical(back[[spec$g]], as.character(df[[spec$g]]))
  )
  # lme4 does not care about the order of the factor levels; keep R's
  df[[spec$g]] = factor(as.character(df[[spec$g]]), levels = levels(df[[spec$g]]))
  res = c(
    list(
      dataset = name,
      y = spec$y, x = spec$x, cluster = spec$g,
      formula = sprintf("%s ~ %s + (%s | %s)", spec$y, spec$x, spec$x, spec$g),
      data = "data.csv",
      lme4_version = as.character(packageVersion("lme4")),
      Matrix_version = as.character(packageVersion("Matrix")),
      R_version = R.version.string,
      layout = LAYOUT
    ),
    references(df, spec$y, spec$x, spec$g)
  )
  if (name == "Orange") {
    sc = df
    sc[[spec$y]] = sc[[spec$y]] * 1e-3
    sc[[spec$x]] = sc[[spec$x]] * 1e-3
    res[["rescaled_1e-3"]] = c(
      list(note = "data.csv with circumference and age each multiplied by 1e-3 (one IEEE double product)"),
      references(sc, spec$y, spec$x, spec$g)
    )
  }
  writeLines(toJSON(full_precision(res), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE),
             file.path(dir, "lme4.json"))
  f = res$fits
  for (m in c("REML", "ML")) {
    cat(sprintf("%-12s %-4s default %.10f  tight %.10f (%s)  diff %.3g\n", name, m,
                f[[m]]$default$criterion, f[[m]]$tight$criterion, f[[m]]$tight$start,
                f[[m]]$default$criterion - f[[m]]$tight$criterion))
  }
}

for (nm in names(sets)) write_set(nm, sets[[nm]])
