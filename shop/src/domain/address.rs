//! Where an order goes: a postal address, each part checked on its own so that a form can say
//! which one is wrong. Free text (no country list, no postcode formats): a shop for everywhere.

use serde::Serialize;
use utoipa::ToSchema;

/// A shipping address, stored with the order it was given for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ShippingAddress {
    /// Who receives the parcel: 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, example = "Ada Lovelace")]
    pub name: String,
    /// Street, number, and any further line: 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, example = "12 St James's Square")]
    pub street: String,
    /// 1 to 16 letters, digits, spaces or dashes.
    #[schema(min_length = 1, max_length = 16, example = "SW1Y 4JH")]
    pub postcode: String,
    #[schema(min_length = 1, max_length = 100, example = "London")]
    pub city: String,
    #[schema(min_length = 2, max_length = 56, example = "United Kingdom")]
    pub country: String,
}

/// The parts of an address, in the order a form shows them.
pub const ADDRESS_PARTS: [&str; 5] = ["name", "street", "postcode", "city", "country"];

/// A trimmed line of `min..=max` characters without control characters.
fn line(raw: &str, min: usize, max: usize) -> Result<String, String> {
    super::text(raw, min, max, false)
}

impl ShippingAddress {
    /// Check one part (`name`, `street`, `postcode`, `city`, `country`); the error says what is
    /// expected.
    pub fn check_part(part: &str, raw: &str) -> Result<String, String> {
        match part {
            "name" => line(raw, 1, 100),
            "street" => line(raw, 1, 200),
            "postcode" => {
                let s = line(raw, 1, 16)?;
                if s.chars().all(|c| c.is_alphanumeric() || c == ' ' || c == '-') {
                    Ok(s)
                } else {
                    Err("may hold only letters, digits, spaces and dashes".into())
                }
            }
            "city" => line(raw, 1, 100),
            "country" => line(raw, 2, 56),
            _ => Err("is not a part of an address".into()),
        }
    }

    /// An address from its five checked parts, in [`ADDRESS_PARTS`] order.
    pub fn from_parts([name, street, postcode, city, country]: [String; 5]) -> Self {
        ShippingAddress { name, street, postcode, city, country }
    }

    /// The parts, in [`ADDRESS_PARTS`] order.
    pub fn parts(&self) -> [&str; 5] {
        [&self.name, &self.street, &self.postcode, &self.city, &self.country]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_trimmed_and_bounded() {
        assert_eq!(ShippingAddress::check_part("city", "  Berlin "), Ok("Berlin".into()));
        assert_eq!(ShippingAddress::check_part("city", "   "), Err("is required".into()));
        assert!(ShippingAddress::check_part("street", &"x".repeat(201)).is_err());
        assert!(ShippingAddress::check_part("street", "Main St\n1").is_err());
        assert!(ShippingAddress::check_part("country", "D").is_err());
        assert_eq!(ShippingAddress::check_part("postcode", "SW1Y 4JH"), Ok("SW1Y 4JH".into()));
        assert_eq!(ShippingAddress::check_part("postcode", "10-115"), Ok("10-115".into()));
        assert!(ShippingAddress::check_part("postcode", "<script>").is_err());
        assert!(ShippingAddress::check_part("planet", "Mars").is_err());
    }
}
