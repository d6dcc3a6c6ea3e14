//! Postman's dynamic variables (`{{$guid}}`, `{{$timestamp}}`, `{{$randomInt}}`,
//! the `$random…` family): a fresh value at every use.

use rand::Rng;
use rand::seq::IndexedRandom;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Linus", "Margaret", "Ken",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Torvalds", "Hamilton", "Thompson",
];
const WORDS: &[&str] = &[
    "ledger", "balance", "credit", "debit", "settle", "account", "transfer", "invoice", "payment", "refund",
];
const LOREM: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
];
const COLORS: &[&str] = &[
    "red", "green", "blue", "orange", "purple", "teal", "maroon", "olive", "navy", "silver",
];
const COUNTRIES: &[(&str, &str)] = &[
    ("Germany", "DE"),
    ("France", "FR"),
    ("Japan", "JP"),
    ("Brazil", "BR"),
    ("Kenya", "KE"),
    ("Canada", "CA"),
];
const CITIES: &[&str] = &["Berlin", "Lyon", "Osaka", "Recife", "Nairobi", "Toronto"];
const CURRENCIES: &[&str] = &["EUR", "USD", "JPY", "GBP", "CHF", "BRL", "KES", "CAD"];
const LOCALES: &[&str] = &["en", "de", "fr", "ja", "pt", "sw"];
const PROTOCOLS: &[&str] = &["http", "https"];
const DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];
const JOB_TITLES: &[&str] = &["Engineer", "Analyst", "Architect", "Manager", "Designer"];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const ABBREVIATIONS: &[&str] = &["SQL", "PCI", "HTTP", "JSON", "XML", "TCP", "SSL", "API"];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)",
    "curl/8.5.0",
];

fn pick(list: &[&'static str]) -> String {
    list.choose(&mut rand::rng()).copied().unwrap_or_default().to_owned()
}

fn alphanumeric(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn hex(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// An ISO 8601 timestamp with milliseconds, like JavaScript's `toISOString()`.
pub fn iso(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

fn days_from_now(min: i64, max: i64) -> String {
    let days = rand::rng().random_range(min..=max);
    iso(now() + time::Duration::days(days))
}

/// The value of dynamic variable `$name` (given without the `$`), or `None` for an unknown name.
pub fn generate(name: &str) -> Option<String> {
    let mut rng = rand::rng();
    let value = match name {
        "guid" | "randomUUID" => uuid::Uuid::new_v4().to_string(),
        "timestamp" => now().unix_timestamp().to_string(),
        "isoTimestamp" => iso(now()),
        "randomInt" => rng.random_range(0..=1000).to_string(),
        "randomAlphaNumeric" => alphanumeric(1),
        "randomBoolean" => rng.random_bool(0.5).to_string(),
        "randomColor" => pick(COLORS),
        "randomHexColor" => format!("#{}", hex(6)),
        "randomAbbreviation" => pick(ABBREVIATIONS),
        "randomIP" => format!(
            "{}.{}.{}.{}",
            rng.random_range(1..255),
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random_range(1..255)
        ),
        "randomIPV6" => (0..8).map(|_| hex(4)).collect::<Vec<_>>().join(":"),
        "randomMACAddress" => (0..6).map(|_| hex(2)).collect::<Vec<_>>().join(":"),
        "randomPassword" => alphanumeric(15),
        "randomLocale" => pick(LOCALES),
        "randomUserAgent" => pick(USER_AGENTS),
        "randomProtocol" => pick(PROTOCOLS),
        "randomSemver" => format!(
            "{}.{}.{}",
            rng.random_range(0..10),
            rng.random_range(0..10),
            rng.random_range(0..10)
        ),
        "randomFirstName" => pick(FIRST_NAMES),
        "randomLastName" => pick(LAST_NAMES),
        "randomFullName" => format!("{} {}", pick(FIRST_NAMES), pick(LAST_NAMES)),
        "randomNamePrefix" => pick(&["Mr.", "Ms.", "Dr.", "Mx."]),
        "randomNameSuffix" => pick(&["Jr.", "Sr.", "PhD", "MD"]),
        "randomJobTitle" => pick(JOB_TITLES),
        "randomEmail" | "randomExampleEmail" => {
            format!("{}.{}@{}", pick(FIRST_NAMES), pick(LAST_NAMES), pick(DOMAINS)).to_lowercase()
        }
        "randomUserName" => format!("{}{}", pick(FIRST_NAMES), rng.random_range(1..100)).to_lowercase(),
        "randomUrl" => format!("https://{}", pick(DOMAINS)),
        "randomDomainName" => pick(DOMAINS),
        "randomDomainWord" => pick(WORDS),
        "randomWord" | "randomNoun" | "randomVerb" | "randomAdjective" => pick(WORDS),
        "randomWords" => (0..3).map(|_| pick(WORDS)).collect::<Vec<_>>().join(" "),
        "randomLoremWord" => pick(LOREM),
        "randomLoremWords" => (0..3).map(|_| pick(LOREM)).collect::<Vec<_>>().join(" "),
        "randomLoremSentence" => {
            let words: Vec<String> = (0..6).map(|_| pick(LOREM)).collect();
            let mut sentence = words.join(" ");
            sentence[..1].make_ascii_uppercase();
            sentence + "."
        }
        "randomPrice" => format!("{}.{:02}", rng.random_range(0..1000), rng.random_range(0..100)),
        "randomCurrencyCode" => pick(CURRENCIES),
        "randomCountry" => COUNTRIES.choose(&mut rng).map(|c| c.0).unwrap_or_default().to_owned(),
        "randomCountryCode" => COUNTRIES.choose(&mut rng).map(|c| c.1).unwrap_or_default().to_owned(),
        "randomCity" => pick(CITIES),
        "randomStreetAddress" => format!("{} {} Street", rng.random_range(1..999), pick(LAST_NAMES)),
        "randomPhoneNumber" => format!(
            "{:03}-{:03}-{:04}",
            rng.random_range(200..999),
            rng.random_range(0..999),
            rng.random_range(0..9999)
        ),
        "randomCompanyName" => format!("{} {}", pick(LAST_NAMES), pick(&["Ltd", "GmbH", "Inc", "SA"])),
        "randomBankAccount" => (0..8).map(|_| rng.random_range(0..10).to_string()).collect(),
        "randomBankAccountIban" => format!(
            "DE{:02}{}",
            rng.random_range(10..99),
            (0..18).map(|_| rng.random_range(0..10).to_string()).collect::<String>()
        ),
        "randomMonth" => pick(MONTHS),
        "randomWeekday" => pick(WEEKDAYS),
        "randomDateFuture" => days_from_now(1, 365),
        "randomDatePast" => days_from_now(-365, -1),
        "randomDateRecent" => days_from_now(-2, 0),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_name_generates_a_value() {
        for name in [
            "guid",
            "randomUUID",
            "timestamp",
            "isoTimestamp",
            "randomInt",
            "randomAlphaNumeric",
            "randomBoolean",
            "randomColor",
            "randomHexColor",
            "randomIP",
            "randomIPV6",
            "randomMACAddress",
            "randomPassword",
            "randomFirstName",
            "randomLastName",
            "randomFullName",
            "randomEmail",
            "randomUserName",
            "randomUrl",
            "randomWord",
            "randomWords",
            "randomLoremSentence",
            "randomPrice",
            "randomCurrencyCode",
            "randomCountry",
            "randomCity",
            "randomPhoneNumber",
            "randomBankAccountIban",
            "randomDateFuture",
            "randomDatePast",
        ] {
            let value = generate(name).unwrap_or_else(|| panic!("{name} unknown"));
            assert!(!value.is_empty(), "{name}");
        }
        assert_eq!(generate("noSuchThing"), None);
    }

    #[test]
    fn shapes() {
        assert!(uuid::Uuid::parse_str(&generate("guid").unwrap()).is_ok());
        let iso = generate("isoTimestamp").unwrap();
        assert!(iso.ends_with('Z') && iso.len() == 24, "{iso}");
        let b = generate("randomBoolean").unwrap();
        assert!(b == "true" || b == "false");
        assert!(generate("randomHexColor").unwrap().starts_with('#'));
    }
}
