use super::*;

fn shipped() -> Topics {
    Topics::parse(BUILT_IN, "built-in").expect("the shipped list parses")
}

#[test]
fn the_shipped_list_has_the_programmes_subjects() {
    let t = shipped();
    let names: Vec<&str> = t.all().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "infrastructure",
            "public-safety",
            "social-services",
            "311",
            "finance",
            "economic-development",
            "housing",
            "technology",
            "governance"
        ]
    );
    assert_eq!(t.label_of("infrastructure"), "Infrastructure (water, roads)");
    assert_eq!(t.label_of("gone"), "gone", "a name the list dropped still shows");
}

#[test]
fn questions_get_the_topics_their_words_name() {
    let t = shipped();
    assert_eq!(
        t.suggest("Lead pipes in our water system", "How did other cities replace lead service lines?"),
        ["infrastructure"]
    );
    assert_eq!(
        t.suggest("Police recruitment", "We cannot fill officer positions. What has worked for recruiting?"),
        ["public-safety"]
    );
    assert_eq!(t.suggest("Moving to a 311 number", "We want one number for resident requests."), ["311"]);
    // A plural and a prefix keyword; the subject outweighs a passing mention in the text.
    let both = t.suggest("Potholes and the budget", "Our streets need repair; the budgeting process is tight.");
    assert_eq!(both, ["infrastructure", "finance"]);
    assert_eq!(t.suggest("Hello", "A question about nothing in particular."), Vec::<String>::new());
    // Whole words only: "rental" is housing, "parental" is not; "it" is no keyword.
    assert_eq!(t.suggest("Parental leave", "is it allowed"), Vec::<String>::new());
    assert_eq!(t.suggest("Rental registry", ""), ["housing"]);
}

#[test]
fn staff_name_topics_by_name_or_label_in_any_case() {
    let t = shipped();
    assert_eq!(t.names("Housing, infrastructure ,housing").expect("names"), ["housing", "infrastructure"]);
    assert_eq!(t.names("finance and budgeting").expect("label"), ["finance"]);
    let e = t.names("housing, parks").expect_err("unknown");
    assert_eq!(e.given, "parks");
    assert!(e.to_string().starts_with("`parks` is not a topic (one of: infrastructure, public-safety,"), "{e}");
}

#[test]
fn a_bad_list_is_refused_with_the_reason() {
    let err = |text: &str| Topics::parse(text, "t.toml").expect_err("refused").to_string();
    assert!(err("").contains("names no topic"));
    assert!(err("[[topic]]\nname = \"a b\"\n").contains("topic 1 (`a b`): a name is letters"));
    assert!(
        err("[[topic]]\nname = \"a\"\n[[topic]]\nname = \"A\"\n").contains("topic 2 (`A`): the name is given twice")
    );
    assert!(err("[[topic]]\nname = \"a\"\nkeywords = [\" * \"]\n").contains("keyword ` * ` has no word"));
    assert!(err("[[topic]]\nname = \"a\"\ncolour = 1\n").contains("unknown field `colour`"));
    assert!(err("[[topic]\n").starts_with("the topics file t.toml is not valid:"));
}
