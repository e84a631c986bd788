//! Each vendor's directory, search-input and phone-book documents. The element names
//! follow the vendors' XML guides (Yealink, Cisco IP Phone Services, Snom, Grandstream,
//! Fanvil, Htek, Polycom's microbrowser), as Wazo's phone plugins serve them.

use crate::domain::{BookContact, DirectoryRow};
use crate::phones::Vendor;
use crate::phones::xml::Xml;

/// A document and its media type.
#[derive(Debug)]
pub struct Answer {
    pub content_type: &'static str,
    pub body: String,
}

const XML: &str = "text/xml; charset=utf-8";
const XHTML: &str = "text/html; charset=utf-8";

/// Shown when a search finds nobody: most phones show an error for an empty directory.
const NO_ENTRIES: &str = "No entries";

/// Absolute URLs of the neighbouring pages, when there are any.
#[derive(Debug, Default)]
pub struct PageLinks {
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// A directory page in `vendor`'s dialect.
pub fn directory(vendor: Vendor, rows: &[DirectoryRow], links: &PageLinks) -> Answer {
    let body = match vendor {
        Vendor::Yealink => entries("YealinkIPPhoneDirectory", vendor, rows),
        Vendor::Htek => entries("PhoneDirectory", vendor, rows),
        Vendor::Fanvil => entries("PhoneBook", vendor, rows),
        Vendor::Cisco => cisco(rows, links),
        Vendor::Snom => snom(rows, links),
        Vendor::Grandstream => {
            grandstream(rows.chunk_by(|a, b| a.crm_id == b.crm_id).map(|contact| {
                (
                    contact[0].name.as_str(),
                    contact.iter().map(|r| r.number.as_str()),
                )
            }))
        }
        Vendor::Polycom => return polycom(rows, links),
    };
    Answer {
        content_type: XML,
        body,
    }
}

/// The name as `vendor`'s firmware shows it. Yealink and Fanvil firmwares are known to
/// cut a name (or drop the entry) at an escaped `&`; Cisco phones show at most 32
/// characters of a name (longer ones fail the whole directory on some models).
fn shown_name(vendor: Vendor, name: &str) -> String {
    match vendor {
        Vendor::Yealink | Vendor::Fanvil => name.replace('&', "+"),
        Vendor::Cisco => name.chars().take(32).collect(),
        _ => name.to_owned(),
    }
}

/// `<Root><DirectoryEntry><Name/><Telephone/></DirectoryEntry>…</Root>`, with a
/// "no entries" entry for an empty result.
fn entries(root: &'static str, vendor: Vendor, rows: &[DirectoryRow]) -> String {
    let mut xml = Xml::new();
    xml.open(root, &[]);
    directory_entries(&mut xml, vendor, rows);
    xml.finish()
}

fn directory_entries(xml: &mut Xml, vendor: Vendor, rows: &[DirectoryRow]) {
    if rows.is_empty() {
        xml.open("DirectoryEntry", &[])
            .leaf("Name", NO_ENTRIES)
            .leaf("Telephone", "")
            .close();
    }
    for row in rows {
        xml.open("DirectoryEntry", &[])
            .leaf("Name", &shown_name(vendor, &row.name))
            .leaf("Telephone", &row.number)
            .close();
    }
}

/// `CiscoIPPhoneDirectory`: entries, then the Dial, Prev, Exit and Next soft keys.
fn cisco(rows: &[DirectoryRow], links: &PageLinks) -> String {
    let mut xml = Xml::new();
    xml.open("CiscoIPPhoneDirectory", &[])
        .leaf("Title", "Directory")
        .leaf("Prompt", "Select a contact");
    directory_entries(&mut xml, Vendor::Cisco, rows);
    let mut keys = vec![("Dial", "SoftKey:Dial")];
    if let Some(prev) = &links.prev {
        keys.push(("Prev", prev));
    }
    keys.push(("Exit", "SoftKey:Exit"));
    if let Some(next) = &links.next {
        keys.push(("Next", next));
    }
    for (position, (name, url)) in keys.into_iter().enumerate() {
        xml.open("SoftKeyItem", &[])
            .leaf("Name", name)
            .leaf("URL", url)
            .leaf("Position", &(position + 1).to_string())
            .close();
    }
    xml.finish()
}

/// `SnomIPPhoneDirectory`: entries, then F2/F4 soft keys to the neighbouring pages.
fn snom(rows: &[DirectoryRow], links: &PageLinks) -> String {
    let mut xml = Xml::new();
    xml.open("SnomIPPhoneDirectory", &[])
        .leaf("Title", "Directory");
    directory_entries(&mut xml, Vendor::Snom, rows);
    for (label, key, url) in [("Previous", "F2", &links.prev), ("Next", "F4", &links.next)] {
        if let Some(url) = url {
            xml.open("SoftKeyItem", &[])
                .leaf("Name", key)
                .leaf("Label", label)
                .leaf("URL", url)
                .close();
        }
    }
    xml.finish()
}

/// Grandstream's `AddressBook`: one `Contact` per contact, one `Phone` per number
/// (account 1, index 0).
fn grandstream<'a, N>(contacts: impl Iterator<Item = (&'a str, N)>) -> String
where
    N: Iterator<Item = &'a str>,
{
    let mut xml = Xml::new();
    xml.open("AddressBook", &[]);
    for (name, numbers) in contacts {
        xml.open("Contact", &[]).leaf("FirstName", name);
        for number in numbers {
            xml.open("Phone", &[("type", "Work")])
                .leaf("phonenumber", number)
                .leaf("accountindex", "0")
                .close();
        }
        xml.close();
    }
    xml.finish()
}

/// Polycom's microbrowser: an XHTML list of `tel://` links, with links to the
/// neighbouring pages.
fn polycom(rows: &[DirectoryRow], links: &PageLinks) -> Answer {
    let mut xml = Xml::new();
    xml.open("html", &[("xmlns", "http://www.w3.org/1999/xhtml")])
        .open("head", &[])
        .leaf("title", "Directory")
        .close()
        .open("body", &[])
        .open("ol", &[]);
    let item = |xml: &mut Xml, href: &str, text: &str| {
        xml.open("li", &[])
            .open("a", &[("href", href)])
            .text(text)
            .close()
            .close();
    };
    if let Some(prev) = &links.prev {
        item(&mut xml, prev, "Previous page");
    }
    if rows.is_empty() {
        xml.leaf("li", NO_ENTRIES);
    }
    for row in rows {
        let text = format!("{} ({})", row.name, row.number);
        item(&mut xml, &format!("tel://{}", row.number), &text);
    }
    if let Some(next) = &links.next {
        item(&mut xml, next, "Next page");
    }
    Answer {
        content_type: XHTML,
        body: xml.finish(),
    }
}

/// The search-input page of a vendor that has one: the phone asks for a name or number
/// and requests `search_url` with `term` added. `token`, when the phone authenticates by
/// URL, rides along (Snom appends its parameter after `?`, so the token goes there).
pub fn input(vendor: Vendor, search_url: &str, token: Option<&str>) -> Option<Answer> {
    let mut xml = Xml::new();
    let (root, url, param) = match vendor {
        Vendor::Cisco => {
            let url = match token {
                Some(token) => format!("{search_url}?token={}", encoded(token)),
                None => search_url.to_owned(),
            };
            ("CiscoIPPhoneInput", url, "term".to_owned())
        }
        Vendor::Snom => {
            let param = match token {
                Some(token) => format!("token={}&term", encoded(token)),
                None => "term".to_owned(),
            };
            ("SnomIPPhoneInput", search_url.to_owned(), param)
        }
        _ => return None,
    };
    xml.open(root, &[])
        .leaf("Title", "Directory")
        .leaf("Prompt", "Name or number")
        .leaf("URL", &url)
        .open("InputItem", &[])
        .leaf("DisplayName", "Name or number")
        .leaf("QueryStringParam", &param)
        .leaf("DefaultValue", "")
        .leaf("InputFlags", "A")
        .close();
    Some(Answer {
        content_type: XML,
        body: xml.finish(),
    })
}

fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A downloadable phone book: Yealink's `YealinkIPPhoneBook` (a `Menu` of `Unit`s, up
/// to three numbers each) or Grandstream's `AddressBook`.
pub fn book(vendor: Vendor, contacts: &[BookContact]) -> Option<Answer> {
    let body = match vendor {
        Vendor::Yealink => {
            let mut xml = Xml::new();
            xml.open("YealinkIPPhoneBook", &[])
                .leaf("Title", "Contacts")
                .open("Menu", &[("Name", "Contacts")]);
            for contact in contacts {
                let number = |i: usize| contact.numbers.get(i).map_or("", String::as_str);
                let name = shown_name(vendor, &contact.name);
                xml.empty(
                    "Unit",
                    &[
                        ("Name", &name),
                        ("Phone1", number(0)),
                        ("Phone2", number(1)),
                        ("Phone3", number(2)),
                        ("default_photo", "Resource:"),
                    ],
                );
            }
            xml.finish()
        }
        Vendor::Grandstream => grandstream(
            contacts
                .iter()
                .map(|c| (c.name.as_str(), c.numbers.iter().map(String::as_str))),
        ),
        _ => return None,
    };
    Some(Answer {
        content_type: XML,
        body,
    })
}
