use std::collections::HashMap;

use crate::plan::{Plan, PlanId};
use crate::{Error, Result};

/// The plans a deployment offers, and the one new users start on.
///
/// [`PlanCatalogue::default`] holds Free (5 generations a day), Pro (50 a day, $10 a month) and
/// Team (unlimited, $30 a month), with Free as the default plan.
///
/// ```
/// use appforge_quota::{PlanCatalogue, PlanId};
///
/// let plans = PlanCatalogue::default();
/// assert_eq!(plans.get(&PlanId::free()).unwrap().daily_generations, Some(5));
/// assert_eq!(plans.get(&PlanId::team()).unwrap().daily_generations, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCatalogue {
    plans: Vec<Plan>,
    by_id: HashMap<PlanId, usize>,
    default_plan: PlanId,
}

impl Default for PlanCatalogue {
    fn default() -> Self {
        Self::new(
            vec![Plan::free(), Plan::pro(), Plan::team()],
            PlanId::free(),
        )
        .expect("the built-in catalogue is valid")
    }
}

impl PlanCatalogue {
    /// A catalogue of `plans` (in display order) where users without a plan get
    /// `default_plan`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when two plans share an id or a Stripe price id, a plan is invalid, or
    /// `default_plan` is not among `plans`.
    pub fn new(plans: Vec<Plan>, default_plan: PlanId) -> Result<Self> {
        let mut by_id = HashMap::with_capacity(plans.len());
        let mut prices = HashMap::new();
        for (i, plan) in plans.iter().enumerate() {
            plan.validate()?;
            if by_id.insert(plan.id.clone(), i).is_some() {
                return Err(Error::Config(format!("plan {} is listed twice", plan.id)));
            }
            for price in [&plan.stripe_price_id_monthly, &plan.stripe_price_id_yearly]
                .into_iter()
                .flatten()
            {
                if let Some(other) = prices.insert(price.as_str(), &plan.id) {
                    return Err(Error::Config(format!(
                        "stripe price {price} is used by plans {other} and {}",
                        plan.id
                    )));
                }
            }
        }
        if !by_id.contains_key(&default_plan) {
            return Err(Error::Config(format!(
                "default plan {default_plan} is not in the catalogue"
            )));
        }
        Ok(Self {
            plans,
            by_id,
            default_plan,
        })
    }

    /// Reads a catalogue from JSON: `{"default_plan": "free", "plans": [{...}, ...]}`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the JSON does not describe a valid catalogue.
    pub fn from_json(json: &str) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Config {
            default_plan: PlanId,
            plans: Vec<Plan>,
        }
        let config: Config = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("plan catalogue JSON: {e}")))?;
        Self::new(config.plans, config.default_plan)
    }

    /// The plan with this id.
    #[must_use]
    pub fn get(&self, id: &PlanId) -> Option<&Plan> {
        self.by_id.get(id).map(|&i| &self.plans[i])
    }

    /// The plan with this id.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlan`] when there is none.
    pub fn require(&self, id: &PlanId) -> Result<&Plan> {
        self.get(id).ok_or_else(|| Error::UnknownPlan(id.clone()))
    }

    /// The plan whose monthly or yearly Stripe price is `price_id`.
    #[must_use]
    pub fn by_stripe_price(&self, price_id: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| {
            plan.stripe_price_id_monthly.as_deref() == Some(price_id)
                || plan.stripe_price_id_yearly.as_deref() == Some(price_id)
        })
    }

    /// The plan new users start on.
    #[must_use]
    pub fn default_plan(&self) -> &Plan {
        &self.plans[self.by_id[&self.default_plan]]
    }

    /// Every plan, in display order.
    #[must_use]
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The plans open to new subscribers, in display order.
    pub fn active(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(|plan| plan.is_active)
    }

    /// This catalogue with `plan` added, or replacing the plan with the same id in place.
    ///
    /// # Errors
    ///
    /// As [`PlanCatalogue::new`].
    pub fn with_plan(&self, plan: Plan) -> Result<Self> {
        let mut plans = self.plans.clone();
        match self.by_id.get(&plan.id) {
            Some(&i) => plans[i] = plan,
            None => plans.push(plan),
        }
        Self::new(plans, self.default_plan.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_pricing() {
        let plans = PlanCatalogue::default();
        let free = plans.get(&PlanId::free()).unwrap();
        let pro = plans.get(&PlanId::pro()).unwrap();
        let team = plans.get(&PlanId::team()).unwrap();
        assert_eq!((free.daily_generations, free.priority), (Some(5), 0));
        assert_eq!(
            (pro.daily_generations, pro.price_monthly, pro.priority),
            (Some(50), Some(1_000), 10)
        );
        assert_eq!(
            (team.daily_generations, team.price_monthly, team.priority),
            (None, Some(3_000), 20)
        );
        assert_eq!(plans.default_plan().id, PlanId::free());
    }

    #[test]
    fn finds_plans_by_stripe_price() {
        let mut pro = Plan::pro();
        pro.stripe_price_id_monthly = Some("price_pro_m".into());
        pro.stripe_price_id_yearly = Some("price_pro_y".into());
        let plans = PlanCatalogue::default().with_plan(pro).unwrap();
        assert_eq!(
            plans.by_stripe_price("price_pro_y").unwrap().id,
            PlanId::pro()
        );
        assert_eq!(
            plans.by_stripe_price("price_pro_m").unwrap().id,
            PlanId::pro()
        );
        assert!(plans.by_stripe_price("price_other").is_none());
        assert_eq!(plans.plans().len(), 3, "replaced in place");
    }

    #[test]
    fn rejects_duplicates_and_a_missing_default() {
        let dup = PlanCatalogue::new(vec![Plan::free(), Plan::free()], PlanId::free());
        assert!(matches!(dup, Err(Error::Config(m)) if m.contains("twice")));
        let missing = PlanCatalogue::new(vec![Plan::pro()], PlanId::free());
        assert!(matches!(missing, Err(Error::Config(m)) if m.contains("default plan")));
        let mut a = Plan::pro();
        a.stripe_price_id_monthly = Some("price_x".into());
        let mut b = Plan::team();
        b.stripe_price_id_yearly = Some("price_x".into());
        let shared = PlanCatalogue::new(vec![Plan::free(), a, b], PlanId::free());
        assert!(matches!(shared, Err(Error::Config(m)) if m.contains("price_x")));
    }

    #[test]
    fn loads_from_json_configuration() {
        let plans = PlanCatalogue::from_json(
            r#"{"default_plan": "hobby", "plans": [
                {"id": "hobby", "name": "Hobby", "daily_generations": 3,
                 "burst": {"requests": 6, "period_ms": 60000, "burst": 2}},
                {"id": "studio", "name": "Studio", "monthly_tokens": 1000000, "priority": 15,
                 "is_active": false}
            ]}"#,
        )
        .unwrap();
        let hobby = plans.default_plan();
        assert_eq!(hobby.daily_generations, Some(3));
        assert_eq!(hobby.burst.unwrap().burst.get(), 2);
        assert!(hobby.is_active, "active unless told otherwise");
        assert_eq!(plans.active().count(), 1);
        let bad = PlanCatalogue::from_json(r#"{"default_plan": "x", "plans": [{"id": "x"}]}"#);
        assert!(matches!(bad, Err(Error::Config(m)) if m.contains("name")));
    }
}
