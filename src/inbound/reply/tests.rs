//! Unit tests for reply stripping.

#![allow(clippy::indexing_slicing, clippy::string_slice)]

use super::*;

fn parts(body: &str) -> ReplyParts {
    split_reply(body)
}

#[test]
fn plain_message_is_all_visible() {
    let p = parts("The streetlight on Elm St is still out.\nPlease send someone.\n");
    assert_eq!(p.visible, "The streetlight on Elm St is still out.\nPlease send someone.");
    assert_eq!(p.signature, None);
    assert_eq!(p.quoted, None);
    assert_eq!(parts(""), ReplyParts::default());
    assert_eq!(new_content("  \r\n "), "");
}

#[test]
fn gmail_on_wrote_with_angle_quotes() {
    let body = "We fixed it this morning.\r\n\r\nOn Mon, Jun 3, 2024 at 9:12 AM Pat Lee <pat@city.example> wrote:\r\n> Is the hydrant fixed?\r\n>\r\n> Pat\r\n";
    let p = parts(body);
    assert_eq!(p.visible, "We fixed it this morning.");
    let q = p.quoted.unwrap_or_default();
    assert!(q.starts_with("On Mon, Jun 3") && q.contains("> Is the hydrant fixed?"), "{q}");
}

#[test]
fn header_wrapped_over_lines_and_no_quote_markers() {
    let body = "Done.\n\nOn Tue, 4 Jun 2024 at 10:00, Public Works <\nworks@city.example> wrote:\n\nOld text without markers.\n";
    assert_eq!(new_content(body), "Done.");
    let body = "Yes.\n\nOn Jun 4, 2024, at 10:00 AM, Sam Roe\n<sam@x.example>\nwrote:\n\n> old\n";
    assert_eq!(new_content(body), "Yes.");
}

#[test]
fn localized_quote_headers() {
    let cases = [
        "Am 04.06.2024 um 10:00 schrieb Max Muster <max@stadt.example>:",
        "Le mar. 4 juin 2024 à 10:00, Jean Dupont <jean@ville.example> a écrit :",
        "Op 4 jun. 2024 om 10:00 heeft Jan Jansen <jan@stad.example> het volgende geschreven:",
        "El mar, 4 jun 2024 a las 10:00, Ana Ruiz (<ana@ciudad.example>) escribió:",
        "Il giorno mar 4 giu 2024 alle ore 10:00 Luca Bianchi <luca@citta.example> ha scritto:",
        "Em ter., 4 de jun. de 2024 às 10:00, João Silva <joao@cidade.example> escreveu:",
        "W dniu 4.06.2024 o 10:00, Jan Kowalski <jan@miasto.example> pisze:",
        "Den 4 juni 2024 kl. 10:00 skrev Sven Svensson <sven@stad.example>:",
        "ti 4. kesäk. 2024 klo 10.00 Matti Meikäläinen <matti@kaupunki.example> kirjoitti:",
        "вт, 4 июн. 2024 г. в 10:00, Иван Петров <ivan@gorod.example>:",
        "Vào 10:00 4 tháng 6, 2024, Nguyễn Văn A <a@thanhpho.example> đã viết:",
        "2024年6月4日(火) 10:00 Taro Yamada <taro@city.example>:",
    ];
    for header in cases {
        let body = format!("New answer.\n\n{header}\n\nOld question.\n");
        let p = parts(&body);
        assert_eq!(p.visible, "New answer.", "header: {header}");
        assert!(p.quoted.unwrap_or_default().contains("Old question."), "header: {header}");
    }
}

#[test]
fn outlook_header_blocks() {
    let en = "Scheduled for Friday.\n\n________________________________\nFrom: Resident <r@home.example>\nSent: Tuesday, June 4, 2024 10:00 AM\nTo: 311 <311@city.example>\nSubject: Pothole\n\nThere is a pothole.\n";
    assert_eq!(new_content(en), "Scheduled for Friday.");
    let de = "Erledigt.\n\nVon: Bürger <b@home.example>\nGesendet: Dienstag, 4. Juni 2024 10:00\nAn: Stadt <s@stadt.example>\nBetreff: Schlagloch\n\nText\n";
    assert_eq!(new_content(de), "Erledigt.");
    let fr = "C'est fait.\n\n   De : Habitant <h@maison.example>\n   Envoyé : mardi 4 juin 2024 10:00\n   À : Mairie <m@ville.example>\n   Objet : Nid-de-poule\n\nTexte\n";
    assert_eq!(new_content(fr), "C'est fait.");
    let bold = "Ok\n\n*From:* Resident [mailto:r@home.example]\n*Sent:* Tuesday, June 4, 2024 10:00 AM\n*To:* 311\n*Subject:* Pothole\n";
    assert_eq!(new_content(bold), "Ok");
}

#[test]
fn original_message_separators() {
    for sep in [
        "-----Original Message-----",
        "----- Original Message -----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
    ] {
        let body = format!("Thanks, noted.\n\n{sep}\nHello city\n");
        assert_eq!(new_content(&body), "Thanks, noted.", "{sep}");
    }
}

#[test]
fn signatures_of_each_kind() {
    let p = parts("The crew is on its way.\n\n-- \nAlex Kim\nStreets Division\n");
    assert_eq!(p.visible, "The crew is on its way.");
    assert_eq!(p.signature.as_deref(), Some("-- \nAlex Kim\nStreets Division"));

    let p = parts("Approved.\n\nSent from my iPhone\n");
    assert_eq!(p.visible, "Approved.");
    assert_eq!(p.signature.as_deref(), Some("Sent from my iPhone"));

    let p = parts("Approved.\n\nGet Outlook for Android<https://aka.ms/x>\n");
    assert_eq!(p.visible, "Approved.");

    let p = parts("We will look into it.\n\nBest regards,\nDana Ortiz\nParks Department\n");
    assert_eq!(p.visible, "We will look into it.");
    assert_eq!(p.signature.as_deref(), Some("Best regards,\nDana Ortiz\nParks Department"));

    let p = parts("Fixed.\n\n-Robin\n");
    assert_eq!(p.visible, "Fixed.");

    let p = parts("The inspection is booked.\n\nJane Roe\nBuilding Inspections\n(555) 010-2233\n");
    assert_eq!(p.visible, "The inspection is booked.");
}

#[test]
fn signature_then_quote() {
    let body = "On it.\n\nThanks,\nLee\n\nOn Jun 4, 2024, at 10:00, Resident <r@home.example> wrote:\n\n> Help\n";
    let p = parts(body);
    assert_eq!(p.visible, "On it.");
    assert_eq!(p.signature.as_deref(), Some("Thanks,\nLee"));
    assert!(p.quoted.is_some());
}

#[test]
fn inline_answers_are_kept() {
    let body = "On Jun 4, 2024, at 10:00 AM, Resident <r@home.example> wrote:\n> Where is the leak?\n\nAt 5th and Main.\n\n> When will it be fixed?\n\nTomorrow.\n";
    assert_eq!(new_content(body), "At 5th and Main.\n\nTomorrow.");
    let bottom = "> Is it open?\n> The park, I mean.\n> Thanks\nYes, it reopened today.\n";
    assert_eq!(new_content(bottom), "Yes, it reopened today.");
}

#[test]
fn body_text_that_only_looks_like_headers_is_kept() {
    let body = "On the whole the repair went well.\nOn Monday we start the second phase.\n\nThe data comes From: our sensors.\nI wrote: see the attached plan.\n\nThe notice was sent from my office, not Sent from my iPhone.\nWith regards to the budget, we are fine.\n";
    let p = parts(body);
    assert_eq!(p.visible, body.trim());
    assert_eq!(p.signature, None);
    assert_eq!(p.quoted, None);
}

#[test]
fn lists_and_rules_are_not_signatures() {
    let body = "Steps:\n\n- call the office\n- Fill form\n\n---\n\nThe rule above separates two sections of this reply, it is not a signature.\n";
    let p = parts(body);
    assert_eq!(p.visible, body.trim());
    assert_eq!(p.signature, None);
    let dashes = "Points:\n-- first item to check\n-- second item to check\n\nThat is all.";
    assert_eq!(new_content(dashes), dashes);
}

#[test]
fn a_stray_angle_line_without_header_is_text() {
    let body = "See the banner:\n>>> NEW HOURS <<<\nOpen daily.";
    assert_eq!(new_content(body), body);
}

#[test]
fn forwards_are_content_only_without_an_answer_above() {
    let forward = "---------- Forwarded message ---------\nFrom: Contractor <c@firm.example>\nDate: Tue, Jun 4, 2024 at 10:00 AM\nSubject: Repair\nTo: Works <w@city.example>\n\nThe repair is done.";
    // An answer above the forward: the answer is the new content, the forward is history.
    let p = parts(&format!("Thanks, we will close the request.\n\n{forward}\n"));
    assert_eq!(p.visible, "Thanks, we will close the request.");
    assert!(p.quoted.unwrap_or_default().ends_with("The repair is done."));
    // Nothing above, or only a hand-off note: the forward is what the sender passes on.
    assert_eq!(new_content(&format!("\n\n{forward}\n")), forward);
    let fyi = format!("FYI\n\n{forward}");
    assert_eq!(new_content(&fyi), fyi);
    let zur_info = format!("Zur Info:\n\n{forward}");
    assert_eq!(new_content(&zur_info), zur_info);
    // A longer note is an answer, even when it starts like one.
    let note = format!("FYI, from the contractor.\n\n{forward}");
    assert_eq!(new_content(&note), "FYI, from the contractor.");
}

#[test]
fn header_sharing_a_line_with_the_reply() {
    assert_eq!(new_content("ok On Wed, Jun 5, 2024 at 3:59 PM, a@b.example wrote:\n> hi\n"), "ok");
    assert_eq!(new_content("Sure--- On Wed, Jun 5, 2024 at 3:59 PM, a@b.example wrote:\n> hi\n"), "Sure");
}

#[test]
fn more_client_families() {
    let cjk = [
        "Pat <pat@city.example> 于2024年6月4日周二 10:00写道：",
        "2024년 6월 4일 (화) 오전 10:00, Pat <pat@city.example>님이 작성:",
        "\u{202b}בתאריך יום ג׳, 4 ביוני 2024 ב-10:00 מאת \u{202a}Pat\u{202c}\u{200f} <\u{202a}pat@city.example\u{202c}\u{200f}>:\u{202c}",
        "wt., 4 cze 2024 o 10:00 Pat <pat@city.example> napisał(a):",
        "Pat <pat@city.example>, 4 Haz 2024 Sal, 10:00 tarihinde şunu yazdı:",
    ];
    for header in cjk {
        let body = format!("Reply text.\n\n{header}\n\n> old\n> older\n");
        assert_eq!(new_content(&body), "Reply text.", "{header}");
    }
    let jp = "了解です。\n\n差出人: Pat <pat@city.example>\n送信日時: 2024年6月4日 10:00\n宛先: 311 <311@city.example>\n件名: 道路\n\n本文\n";
    assert_eq!(new_content(jp), "了解です。");
    let ios = "OK\n\niPhoneから送信\n";
    assert_eq!(split_reply(ios).signature.as_deref(), Some("iPhoneから送信"));
    let android = "Fine.\n\n---- Pat Lee wrote ----\n\n> old\n";
    assert_eq!(new_content(android), "Fine.");
    let thunderbird = "Agreed.\n\nOn 04.06.24 10:00, Pat Lee wrote:\n> old\n";
    assert_eq!(new_content(thunderbird), "Agreed.");
    let yahoo = "Yes.\n\nOn Tuesday, June 4, 2024, 10:00:00 AM EDT, Pat Lee <pat@home.example> wrote:\n\nOld text\n";
    assert_eq!(new_content(yahoo), "Yes.");
}

#[test]
fn sentences_after_a_closing_or_a_rule_stay_visible() {
    let body = "Hello,\n\nThanks!\nWe will send a crew tomorrow morning.\n";
    assert_eq!(new_content(body), body.trim());
    let body = "The work order is complete.\n\n=====\nWork order: 12345\nCrew: B\nCompleted: June 4\n";
    assert_eq!(new_content(body), body.trim());
    let body = "Thanks,\nplease tell us if it happens again.\n";
    assert_eq!(new_content(body), body.trim());
}

#[test]
fn memo_in_the_reply_is_not_a_header_block() {
    let body =
        "To: All residents\nFrom: Public Works\nSubject: Water shutoff\nDate: June 4, 2024\n\nWater is off 9-11am.";
    assert_eq!(new_content(body), body);
}

#[test]
fn random_mixtures_never_panic() {
    const TOKENS: &[&str] = &[
        "On ",
        "wrote:",
        "From: ",
        "Sent: ",
        "To: ",
        "Subject: ",
        "> ",
        ">",
        "--",
        "-- ",
        "\n",
        "\r\n",
        "\r",
        " ",
        "a@b.c",
        "<x@y.z>",
        "2024",
        "10:30",
        "Thanks,",
        "Regards",
        "Sent from my iPhone",
        "-----Original Message-----",
        "---------- Forwarded message ---------",
        "é",
        "Ü",
        "İ",
        "日本",
        "写道：",
        "\u{a0}",
        "\u{200e}",
        "—",
        "___",
        "Jane Doe",
        "-Bob",
        "Am ",
        "schrieb",
        "Le ",
        " a écrit :",
        "(",
        ")",
        "[",
        "]",
        "*",
        "<",
        ":",
        "http://x.y",
        "555-123-4567",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut body = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 60) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push_str(TOKENS[(seed % TOKENS.len() as u64) as usize]);
        }
        let p = split_reply(&body);
        assert_eq!(p.visible, p.visible.trim());
    }
}

#[test]
fn never_panics_on_odd_input() {
    let long_quote = format!("top\n{}\nend", ">".repeat(200_000));
    let inputs = [
        "\r",
        "\n\n\n",
        ">",
        "-- ",
        "--",
        "On",
        "On \u{e9}",
        "From:",
        "From: a@b",
        "é\u{200e}:",
        "\u{0}\u{1}",
        "Ünïcödé On 2024 wrote",
        "x On 2024-01-01 12:00 a@b wrote",
        long_quote.as_str(),
    ];
    for s in inputs {
        let _ = split_reply(s);
    }
    let many_lines = "On 1 Jan 2024 a@b\n".repeat(20_000);
    let _ = split_reply(&many_lines);
}

/// Every non-blank visible line is (a piece of) an input line: nothing is invented or garbled.
fn assert_visible_from_input(body: &str) -> ReplyParts {
    let p = split_reply(body);
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    for l in p.visible.lines().filter(|l| !l.trim().is_empty()) {
        assert!(normalized.contains(l), "visible line {l:?} not in input {body:?}");
    }
    assert_eq!(p.visible, p.visible.trim());
    p
}

#[test]
fn multi_byte_characters_at_every_byte_boundary() {
    // Shift multi-byte characters across each internal limit (24-, 40-, 60-, 120-, 400-byte
    // windows) so that every limit falls inside a character at least once.
    for shift in 0..8 {
        let pad = "x".repeat(shift);
        let wide = "é漢😀".repeat(40);
        let bodies = [
            format!("ok {pad}On {wide} 2024 a@b.example wrote: {wide}\n> old"),
            format!("Réponse {pad}{wide}\n\nLe {pad}{wide} 2024 a écrit :\n> ancien"),
            format!("{pad}{wide} From: a@b.example Date: {wide} 10:00 {wide}"),
            format!("Text\n\n*{pad}{wide}: {wide}\n{pad}Sent: 10:00\nTo: a@b.example\n"),
            format!("Answer\n\n{pad}{wide}\n{wide} 写道：\n> 旧"),
            format!("Fine.\n\nSent from my {pad}{wide}<http://{wide}>\n"),
            format!("Done.\n\n{pad}{wide} (mailto:{wide})\n"),
            format!("{pad}{}On 2024 a@b.example wrote:", "é".repeat(199)),
        ];
        for body in &bodies {
            assert_visible_from_input(body);
        }
    }
    // The reply above a header is kept even when the header is full of multi-byte text.
    let body = "Oui, c'est réparé.\n\nLe mar. 4 juin 2024 à 10:00, Élodie Rœmer <élodie@ville.example> a écrit :\n> Où en est la réparation ?\n";
    assert_eq!(new_content(body), "Oui, c'est réparé.");
}

#[test]
fn lone_carriage_returns_are_line_breaks() {
    let body = "Fixed today.\r\rOn Tue, Jun 4, 2024 at 10:00 AM Pat <pat@city.example> wrote:\r> Is it fixed?\r";
    assert_eq!(new_content(body), "Fixed today.");
    let mixed = "One\r\nTwo\rThree\n\r\n\rFour";
    assert_eq!(new_content(mixed), "One\nTwo\nThree\n\n\nFour");
    assert_eq!(new_content("\r\r\r"), "");
}

#[test]
fn empty_and_blank_only_bodies() {
    for body in ["", "\n", "\n\n\n\n", " \t \n \t", ">", "> \n>\n>", "--", "-- \n", "____", "From:", ":"] {
        let p = assert_visible_from_input(body);
        assert!(p.visible.len() <= body.len(), "{body:?}");
    }
    // Quote lines only: nothing new was written.
    assert_eq!(new_content("> a\n> b\n> c\n"), "");
    // Blank lines between the reply and the header do not matter.
    assert_eq!(
        new_content("\n\n\nYes.\n\n\n\n\nOn Jun 4, 2024, at 10:00, Pat <p@x.example> wrote:\n\n\n> q\n"),
        "Yes."
    );
}

#[test]
fn huge_lines_and_many_lines() {
    // A one-megabyte line of text, with and without header words in it.
    let text = "word ".repeat(200_000);
    assert_eq!(new_content(&text), text.trim());
    let on = "On 2024 a@b.example ".repeat(50_000);
    assert_visible_from_input(&on);
    let colons = format!("From: {}", ":".repeat(1 << 20));
    assert_visible_from_input(&colons);
    // A reply above a huge quoted line is still found.
    let body =
        format!("Short answer.\n\nOn Jun 4, 2024, at 10:00, Pat <p@x.example> wrote:\n> {}\n", "é".repeat(500_000));
    assert_eq!(new_content(&body), "Short answer.");
    // Many short lines that each look like the start of a header.
    let many = "Von: a@b.example\n".repeat(30_000);
    assert_visible_from_input(&many);
}
