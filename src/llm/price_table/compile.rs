//! Validating `[pricing]` into a [`ValidatedTable`]: every entry, tier, version and override
//! checked, patterns compiled, every problem reported.

use super::*;

pub(super) fn parse_date_ns(s: &str) -> Option<u64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &fmt).ok()?;
    let ts = d.midnight().assume_utc().unix_timestamp_nanos();
    u64::try_from(ts).ok()
}

pub(super) fn compile_pattern(p: &str) -> Result<Result<globset::Glob, String>, String> {
    if let Some(re) = p.strip_prefix("regex:") {
        regex::Regex::new(&format!("(?i){re}")).map_err(|e| e.to_string())?;
        Ok(Err(format!("(?i){re}")))
    } else {
        GlobBuilder::new(&p.to_ascii_lowercase())
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map(Ok)
            .map_err(|e| e.to_string())
    }
}

/// Parses the shipped table.
pub fn builtin_models() -> Result<Vec<ModelPrice>, PricingError> {
    let c: PricingConfig =
        toml::from_str(BUILTIN_PRICES).map_err(|e| PricingError::Builtin(e.to_string()))?;
    Ok(c.models)
}

/// Validates a `[pricing]` section into a table. Pure: no files, sockets or clocks.
pub fn validate(config: &PricingConfig) -> Result<ValidatedTable, Vec<PricingError>> {
    let mut errors = Vec::new();
    let builtin = if config.builtin {
        match builtin_models() {
            Ok(m) => m,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    // User entries first (they win), then shipped entries whose name the user did not define.
    let user_names: std::collections::HashSet<String> = config
        .models
        .iter()
        .map(|m| m.name.to_ascii_lowercase())
        .collect();
    let entries: Vec<(usize, &ModelPrice)> = config
        .models
        .iter()
        .enumerate()
        .chain(
            builtin
                .iter()
                .filter(|m| !user_names.contains(&m.name.to_ascii_lowercase()))
                .enumerate(),
        )
        .collect();

    let mut groups: Vec<Group> = Vec::new();
    let mut exact: HashMap<String, usize> = HashMap::new();
    let mut globs = GlobSetBuilder::new();
    let mut regexes: Vec<String> = Vec::new();
    let mut pattern_group = Vec::new();
    let mut glob_order = Vec::new();
    let mut regex_order = Vec::new();
    for (index, m) in entries {
        let name = m.name.trim();
        if name.is_empty() {
            errors.push(PricingError::EmptyName { index });
            continue;
        }
        let key = name.to_ascii_lowercase();
        let from_ns = match &m.effective_from {
            None => None,
            Some(d) => match parse_date_ns(d) {
                Some(ns) => Some(ns),
                None => {
                    errors.push(PricingError::BadDate {
                        name: name.into(),
                        value: d.clone(),
                    });
                    continue;
                }
            },
        };
        let mut tiers: Vec<(u64, Rates)> = m
            .tiers
            .iter()
            .map(|t| (t.above_input_tokens, Rates::of_tier(t)))
            .collect();
        tiers.sort_by_key(|t| t.0);
        if let Some(w) = tiers.windows(2).find(|w| w[0].0 == w[1].0) {
            errors.push(PricingError::DuplicateTier {
                name: name.into(),
                threshold: w[0].0,
            });
        }
        let version = Version {
            from_ns,
            effective_from: m.effective_from.as_deref().map(Arc::from),
            rates: Rates::of_model(m),
            tiers,
            batch_discount: m.batch_discount,
        };
        let gi = match exact.get(&key) {
            Some(&gi) => {
                let g: &mut Group = &mut groups[gi];
                if g.versions.iter().any(|v| v.from_ns == from_ns) {
                    errors.push(PricingError::Duplicate { name: name.into() });
                    continue;
                }
                g.versions.push(version);
                g.versions.sort_by_key(|v| v.from_ns);
                gi
            }
            None => {
                groups.push(Group {
                    name: Arc::from(name),
                    provider: m.provider.as_deref().map(Arc::from),
                    versions: vec![version],
                });
                exact.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        for p in &m.patterns {
            match compile_pattern(p) {
                Ok(Ok(glob)) => {
                    globs.add(glob);
                    glob_order.push(pattern_group.len());
                    pattern_group.push(gi);
                }
                Ok(Err(re)) => {
                    regexes.push(re);
                    regex_order.push(pattern_group.len());
                    pattern_group.push(gi);
                }
                Err(reason) => errors.push(PricingError::BadPattern {
                    name: name.into(),
                    pattern: p.clone(),
                    reason,
                }),
            }
        }
    }
    for (index, o) in config.overrides.iter().enumerate() {
        if o.when.is_empty() {
            errors.push(PricingError::EmptyOverride { index });
        }
    }
    let globs = globs.build().map_err(|e| {
        vec![PricingError::BadPattern {
            name: "*".into(),
            pattern: "*".into(),
            reason: e.to_string(),
        }]
    });
    let regexes = RegexSet::new(&regexes).map_err(|e| {
        vec![PricingError::BadPattern {
            name: "*".into(),
            pattern: "regex".into(),
            reason: e.to_string(),
        }]
    });
    let (globs, regexes) = match (globs, regexes) {
        (Ok(g), Ok(r)) if errors.is_empty() => (g, r),
        (g, r) => {
            errors.extend(g.err().unwrap_or_default());
            errors.extend(r.err().unwrap_or_default());
            return Err(errors);
        }
    };
    let fallback = config.fallback.as_ref().map(|f| Group {
        name: Arc::from(f.name.as_str()),
        provider: None,
        versions: vec![Version {
            from_ns: None,
            effective_from: None,
            rates: Rates {
                input: f.input,
                output: f.output,
                cache_read: f.cache_read,
                cache_write: f.cache_write,
                cache_write_1h: f.cache_write_1h,
            },
            tiers: Vec::new(),
            batch_discount: None,
        }],
    });
    Ok(ValidatedTable {
        groups,
        exact,
        globs,
        regexes,
        pattern_group,
        glob_order,
        regex_order,
        fallback,
        overrides: config.overrides.clone(),
        batch_discount: config.batch_discount,
        replace_reported_cost: config.replace_reported_cost,
        cache: Mutex::new(HashMap::new()),
    })
}
