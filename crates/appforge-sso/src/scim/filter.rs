use crate::{Error, Result};

/// The `filter` of a `GET /Users` request that identity providers send to find a user
/// before creating it (RFC 7644 section 3.4.2.2): one `eq` comparison on `userName`,
/// `externalId` or `emails.value`. Attribute names and the operator are case-insensitive;
/// the value is a JSON string.
///
/// ```
/// use appforge_sso::scim::ScimFilter;
///
/// let filter: ScimFilter = r#"userName eq "ada@acme.com""#.parse()?;
/// assert_eq!(filter, ScimFilter::UserName("ada@acme.com".into()));
/// assert!(r#"userName co "ada""#.parse::<ScimFilter>().is_err());
/// # Ok::<_, appforge_sso::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScimFilter {
    /// `userName eq "..."`. SCIM compares user names case-insensitively.
    UserName(String),
    /// `externalId eq "..."` (case-sensitive).
    ExternalId(String),
    /// `emails.value eq "..."` (case-insensitive).
    Email(String),
}

impl ScimFilter {
    /// Whether `user` matches, with the attribute's case rule.
    #[must_use]
    pub fn matches(&self, user: &super::ScimUser) -> bool {
        match self {
            Self::UserName(name) => user.user_name.eq_ignore_ascii_case(name),
            Self::ExternalId(id) => user.external_id.as_deref() == Some(id.as_str()),
            Self::Email(email) => user
                .emails
                .iter()
                .any(|e| e.value.eq_ignore_ascii_case(email)),
        }
    }
}

impl std::str::FromStr for ScimFilter {
    type Err = Error;

    fn from_str(filter: &str) -> Result<Self> {
        let invalid = |why: &str| Error::Scim(format!("invalidFilter: {why} in {filter:?}"));
        let filter_text = filter.trim();
        let (attribute, rest) = filter_text
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid("expected `attribute eq \"value\"`"))?;
        let (operator, value) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid("expected `attribute eq \"value\"`"))?;
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(invalid("only the eq operator is supported"));
        }
        let value = value.trim();
        if !value.starts_with('"') {
            return Err(invalid("the value must be a quoted string"));
        }
        let value: String = serde_json::from_str(value)
            .map_err(|_| invalid("the value must be one JSON string"))?;
        let attribute = attribute
            .strip_prefix(super::USER_SCHEMA)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(attribute);
        match attribute.to_ascii_lowercase().as_str() {
            "username" => Ok(Self::UserName(value)),
            "externalid" => Ok(Self::ExternalId(value)),
            "emails.value" | "emails" => Ok(Self::Email(value)),
            _ => Err(invalid(
                "only userName, externalId and emails.value can be filtered",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(filter: &str) -> Result<ScimFilter> {
        filter.parse()
    }

    #[test]
    fn eq_filters_parse() {
        assert_eq!(
            parse(r#"userName eq "ada@acme.com""#).unwrap(),
            ScimFilter::UserName("ada@acme.com".into())
        );
        assert_eq!(
            parse(r#"  USERNAME  EQ  "ada@acme.com"  "#).unwrap(),
            ScimFilter::UserName("ada@acme.com".into())
        );
        assert_eq!(
            parse(r#"externalId eq "abc \"quoted\" \u00e9""#).unwrap(),
            ScimFilter::ExternalId("abc \"quoted\" é".into())
        );
        assert_eq!(
            parse(r#"emails.value eq "ada@acme.com""#).unwrap(),
            ScimFilter::Email("ada@acme.com".into())
        );
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#).unwrap(),
            ScimFilter::UserName("x".into())
        );
    }

    #[test]
    fn other_filters_are_refused() {
        for filter in [
            "",
            "userName",
            r#"userName co "ada""#,
            r#"userName eq ada"#,
            r#"userName eq "a" and active eq true"#,
            r#"title eq "x""#,
            r#"userName eq "unterminated"#,
        ] {
            let err = parse(filter).unwrap_err();
            assert!(err.to_string().contains("invalidFilter"), "{filter}: {err}");
        }
    }

    #[test]
    fn matching_follows_the_case_rules() {
        let mut user = crate::scim::ScimUser::new("Ada@Acme.com");
        user.external_id = Some("X1".into());
        assert!(ScimFilter::UserName("ada@acme.com".into()).matches(&user));
        assert!(!ScimFilter::ExternalId("x1".into()).matches(&user));
        assert!(ScimFilter::ExternalId("X1".into()).matches(&user));
        assert!(!ScimFilter::Email("ada@acme.com".into()).matches(&user));
    }
}
