//! Validated values: each constructor is the only place its rule lives, and says in plain words
//! what is expected when the input breaks it ([`crate::edge::input`] turns that into a field error).

/// A lower-cased, syntactically plausible e-mail address (≤ 254 characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("is required".into());
        }
        if s.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let invalid = || "is not a valid e-mail address".to_string();
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let ok_chars = |p: &str| p.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with(['.', '-'])
            || domain.ends_with(['.', '-'])
            || domain.contains("..")
            || !ok_chars(local)
            || !domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A password of 10 to 128 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if n < 10 {
            Err("must be at least 10 characters".into())
        } else if n > 128 {
            Err("must be at most 128 characters".into())
        } else {
            Ok(Password(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's display name: 1 to 100 characters, no control characters.
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let n = s.chars().count();
        if n == 0 {
            Err("is required".into())
        } else if n > 100 {
            Err("must be at most 100 characters".into())
        } else if s.chars().any(char::is_control) {
            Err("must not contain control characters".into())
        } else {
            Ok(PersonName(s.to_string()))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A cart quantity: 1 to 99.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 99;

    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Quantity(n))
        } else {
            Err(format!("must be between 1 and {}", Self::MAX))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A trimmed text of `min..=max` characters (empty: "is required" when `min` > 0); `multiline`
/// allows line breaks and tabs, no other control characters.
pub fn text(raw: &str, min: usize, max: usize, multiline: bool) -> Result<String, String> {
    let s = raw.trim();
    let n = s.chars().count();
    if n < min {
        Err(if n == 0 { "is required".into() } else { format!("must be at least {min} characters") })
    } else if n > max {
        Err(format!("must be at most {max} characters"))
    } else if s.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        Err("must not contain control characters".into())
    } else {
        Ok(s.to_string())
    }
}
