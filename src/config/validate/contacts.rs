//! `[[contact]]`: who receives e-mails, in which language, from which severity; and the check
//! of every reference to a contact by name (groups, periods, `daemon.monitor_contacts`).

use chrono::NaiveTime;

use super::{language, looks_like_email};
use crate::config::diagnostics::{Cx, Names};
use crate::config::model::{Contact, Language, Severity};
use crate::config::raw::{RawContact, S};

pub fn contacts(cx: &mut Cx<'_>, raw: &[RawContact], default_language: Language) -> (Vec<Contact>, Names<'static>) {
    let mut contact_names = Names::new("contact");
    let mut contacts = Vec::new();
    for c in raw {
        contact_names.add(cx, &c.name);
        let name = cx.name(&c.name, "contact");
        let emails = c.emails.get_ref().clone();
        if emails.is_empty() {
            cx.error(c.emails.span(), format!("contact {name:?}: emails must list at least one address"));
        }
        for e in &emails {
            if !looks_like_email(e) {
                cx.error(c.emails.span(), format!("contact {name:?}: {e:?} is not an e-mail address"));
            }
        }
        let daily_summary =
            c.daily_summary.as_ref().and_then(|d| match NaiveTime::parse_from_str(d.get_ref(), "%H:%M") {
                Ok(t) => Some(t),
                Err(_) => {
                    cx.error(
                        d.span(),
                        format!(
                            "contact {name:?}: daily_summary must be a local time \"HH:MM\", not {:?}",
                            d.get_ref()
                        ),
                    );
                    None
                }
            });
        let min_severity = match c.min_severity.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("warning", _)) => Severity::Warning,
            Some(("breach", _)) => Severity::Breach,
            Some((other, span)) => {
                cx.error(
                    span,
                    format!("contact {name:?}: min_severity must be \"warning\" or \"breach\", not {other:?}"),
                );
                Severity::Warning
            }
        };
        let language = language(cx, &c.language, default_language, &format!("contact {name:?}: "));
        contacts.push(Contact { name, emails, language, daily_summary, min_severity });
    }
    (contacts, contact_names)
}

/// Names of contacts, each of which must be a `[[contact]]`.
pub fn refs(cx: &mut Cx<'_>, contacts: &Names<'_>, list: &[S<String>], owner: &str) -> Vec<String> {
    list.iter()
        .map(|c| {
            if !contacts.contains(c.get_ref()) {
                cx.error(
                    c.span(),
                    format!("{owner}: unknown contact {:?} (no [[contact]] has that name)", c.get_ref()),
                );
            }
            c.get_ref().clone()
        })
        .collect()
}
