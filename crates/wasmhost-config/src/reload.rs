//! What a config reload changes: the new file's apps matched against the
//! live ones by name, decided before anything is loaded.
//!
//! An app whose spec (module, limits, guest environment, how it is kept
//! current) is unchanged is kept, with its warm instances, even when its
//! mount moved; any other app of the new file is loaded, replacing the live
//! app of the same name if there is one (a *change*) or not (an *addition*);
//! a live app the new file no longer names is *removed*.

/// What to do with one app of the new file, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep the live app at this index as it is.
    Keep(usize),
    /// Load the app; it replaces the live app at this index, if any.
    Load(Option<usize>),
}

/// The plan of a reload: a step per app of the new file, and the names
/// added, changed, removed and kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// One step per app of the new file, in its order.
    pub steps: Vec<Step>,
    /// Apps the new file adds.
    pub added: Vec<String>,
    /// Apps loaded again because their spec changed.
    pub changed: Vec<String>,
    /// Live apps the new file no longer names.
    pub removed: Vec<String>,
    /// Live apps kept as they are.
    pub kept: Vec<String>,
}

impl ReloadPlan {
    /// The plan for going from the `live` apps to the `next` ones, each
    /// given as `(name, spec)`; a live app is kept only for an app of the
    /// same name and an equal spec.
    pub fn new<S: PartialEq>(live: &[(&str, S)], next: &[(&str, S)]) -> Self {
        let mut plan = Self::default();
        let mut taken = vec![false; live.len()];
        for (name, spec) in next {
            let same = (0..live.len()).find(|&i| !taken[i] && live[i].0 == *name && live[i].1 == *spec);
            match same {
                Some(i) => {
                    taken[i] = true;
                    plan.kept.push(name.to_string());
                    plan.steps.push(Step::Keep(i));
                }
                None => {
                    let replaces = live.iter().position(|(live_name, _)| live_name == name);
                    match replaces {
                        Some(_) => plan.changed.push(name.to_string()),
                        None => plan.added.push(name.to_string()),
                    }
                    plan.steps.push(Step::Load(replaces));
                }
            }
        }
        plan.removed = live
            .iter()
            .enumerate()
            .filter(|(i, (name, _))| !taken[*i] && !plan.changed.iter().any(|changed| changed == name))
            .map(|(_, (name, _))| name.to_string())
            .collect();
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_apps_are_kept_changed_ones_reloaded() {
        let live = [("a", 1), ("b", 2), ("c", 3)];
        let next = [("b", 2), ("a", 10), ("d", 4)];
        let plan = ReloadPlan::new(&live, &next);
        assert_eq!(plan.steps, [Step::Keep(1), Step::Load(Some(0)), Step::Load(None)]);
        assert_eq!(plan.kept, ["b"]);
        assert_eq!(plan.changed, ["a"]);
        assert_eq!(plan.added, ["d"]);
        assert_eq!(plan.removed, ["c"]);
    }

    #[test]
    fn the_same_file_keeps_everything() {
        let live = [("a", 1), ("b", 2)];
        let plan = ReloadPlan::new(&live, &live);
        assert_eq!(plan.steps, [Step::Keep(0), Step::Keep(1)]);
        assert!(plan.added.is_empty() && plan.changed.is_empty() && plan.removed.is_empty());
    }

    #[test]
    fn a_spec_moving_to_another_name_is_not_kept() {
        // Names label logs and metrics: an app renamed is a new app.
        let plan = ReloadPlan::new(&[("a", 1)], &[("b", 1)]);
        assert_eq!(plan.steps, [Step::Load(None)]);
        assert_eq!((plan.added, plan.removed), (vec!["b".to_owned()], vec!["a".to_owned()]));
    }

    #[test]
    fn an_empty_file_removes_all() {
        let plan = ReloadPlan::new(&[("a", 1), ("b", 2)], &[]);
        assert!(plan.steps.is_empty());
        assert_eq!(plan.removed, ["a", "b"]);
    }
}
