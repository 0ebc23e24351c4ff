//! OpenAI-compatible conversations as operator sessions: the request's
//! `messages` become (history before the last user message, that message),
//! and a client that resends the whole history (most do) continues the
//! caller's operator session whose stored conversation is exactly that
//! history. The turn itself is the ordinary [`crate::ops::chat::run_turn`].

use crate::app::App;
use crate::error::{Error, Result};
use crate::hermes::api::HistoryMessage;
use crate::store::state::{ListQuery, RowFilter};
use serde::Deserialize;
use serde_json::Value;

/// How many of the caller's most recent open operator sessions are compared
/// with a request's history (newest first).
const MATCH_CANDIDATES: i64 = 50;

/// One message of a chat completion request.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Value,
}

/// A request's conversation, split for a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The user and assistant turns before the last user message.
    pub prior: Vec<HistoryMessage>,
    /// The last user message: the turn's message.
    pub message: String,
    /// How many system/developer messages were left out (the operator's own
    /// supervision prompt governs the agent; a client cannot replace it).
    pub dropped_system: usize,
}

/// The text of a message's `content`: a string, or the `text` parts of an
/// array. Images, audio and files are refused (the agent takes text).
fn text_of(role: &str, content: &Value) -> Result<String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match (p["type"].as_str(), p["text"].as_str()) {
                    (Some("text"), Some(t)) => out.push(t),
                    (t, _) => {
                        return Err(Error::usage(format!(
                        "a {role} message has a content part of type {:?}; only text is supported",
                        t.unwrap_or("?")
                    )))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(Error::usage(format!(
            "a {role} message's content must be a string or an array of text parts"
        ))),
    }
}

/// Split `messages` into the prior conversation and the new user message.
pub fn split(messages: &[ChatMessage]) -> Result<Conversation> {
    let Some((last, before)) = messages.split_last() else {
        return Err(Error::usage("messages is empty"));
    };
    if last.role != "user" {
        return Err(Error::usage(format!(
            "the last message must be the user's (it is {:?})",
            crate::output::clip(&last.role, 20)
        )));
    }
    let message = text_of("user", &last.content)?;
    let mut prior = Vec::new();
    let mut dropped_system = 0;
    for m in before {
        match m.role.as_str() {
            "system" | "developer" => dropped_system += 1,
            "user" | "assistant" => {
                let content = text_of(&m.role, &m.content)?;
                if !content.trim().is_empty() {
                    prior.push(HistoryMessage {
                        role: m.role.clone(),
                        content,
                    });
                }
            }
            "tool" | "function" => {
                return Err(Error::usage(
                    "tool messages are not supported: the agent runs its own tools (client-side function calling is not available)",
                ))
            }
            other => {
                return Err(Error::usage(format!(
                    "unknown message role {:?}",
                    crate::output::clip(other, 20)
                )))
            }
        }
    }
    Ok(Conversation {
        prior,
        message,
        dropped_system,
    })
}

/// A conversation as (user text, assistant texts that followed) pairs, with
/// surrounding whitespace ignored.
fn exchanges(h: &[HistoryMessage]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for m in h {
        let t = m.content.trim().to_string();
        if m.role == "user" {
            out.push((t, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(t);
        } else {
            // An assistant message before any user message (a greeting):
            // kept as its own exchange so it must match too.
            out.push((String::new(), vec![t]));
        }
    }
    out
}

/// Whether a stored conversation is the request's history: the same user
/// messages in order, and after each the assistant's reply as the client
/// saw it. Hermes may store a turn's text in several assistant messages
/// (before and after tool calls) while the client got the run's final
/// output, or all of it: either counts.
pub fn same_conversation(stored: &[HistoryMessage], request: &[HistoryMessage]) -> bool {
    let (a, b) = (exchanges(stored), exchanges(request));
    a.len() == b.len()
        && a.iter().zip(&b).all(|((su, sa), (ru, ra))| {
            su == ru && {
                let client = ra.join("\n\n");
                let client = client.trim();
                sa.is_empty() && client.is_empty()
                    || sa.last().is_some_and(|l| l == client)
                    || sa.join("\n\n").trim() == client
                    || sa.join("").trim() == client
            }
        })
}

/// The caller's open operator session whose conversation is exactly
/// `prior`, newest first; `None` for an empty history or no match.
pub fn find_continuation(
    app: &App,
    user_id: &str,
    prior: &[HistoryMessage],
) -> Result<Option<String>> {
    if prior.is_empty() {
        return Ok(None);
    }
    let db = app.state_read()?;
    let candidates = db.list_sessions(&ListQuery {
        rows: RowFilter {
            operator_only: true,
            user_id: Some(user_id.to_string()),
        },
        limit: Some(MATCH_CANDIDATES),
        ..Default::default()
    })?;
    let wanted_users = prior.iter().filter(|m| m.role == "user").count() as i64;
    for s in candidates {
        // Each stored user message is one row: a cheap first filter.
        if s.ended_at.is_some() || s.message_count < wanted_users {
            continue;
        }
        let stored = crate::ops::chat::history(&db.messages(&s.id)?);
        if same_conversation(&stored, prior) {
            return Ok(Some(s.id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(role: &str, content: &str) -> HistoryMessage {
        HistoryMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn split_takes_the_last_user_message_and_text_parts() {
        let msgs: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]))
        .unwrap();
        let c = split(&msgs).unwrap();
        assert_eq!(c.message, "a\nb");
        assert_eq!(c.prior, vec![m("user", "hi"), m("assistant", "hello")]);
        assert_eq!(c.dropped_system, 1);
        for bad in [
            json!([]),
            json!([{"role": "assistant", "content": "x"}]),
            json!([{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}]),
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            json!([{"role": "user", "content": 5}]),
        ] {
            let msgs: Vec<ChatMessage> = serde_json::from_value(bad.clone()).unwrap();
            assert_eq!(split(&msgs).unwrap_err().kind, crate::Kind::Usage, "{bad}");
        }
    }

    #[test]
    fn conversations_match_on_users_and_what_the_client_saw() {
        let stored = vec![
            m("user", "list files"),
            m("assistant", "Let me look."),
            m("assistant", "There are 3 files."),
            m("user", "thanks"),
            m("assistant", "You're welcome."),
        ];
        // The client saw the final output, or everything.
        let final_only = vec![
            m("user", "list files"),
            m("assistant", "There are 3 files.\n"),
            m("user", "thanks"),
            m("assistant", "You're welcome."),
        ];
        assert!(same_conversation(&stored, &final_only));
        let all = vec![
            m("user", "list files"),
            m("assistant", "Let me look.\n\nThere are 3 files."),
            m("user", "thanks"),
            m("assistant", "You're welcome."),
        ];
        assert!(same_conversation(&stored, &all));
        // A different user message, a missing turn, an edited reply: no.
        let mut edited = final_only.clone();
        edited[3].content = "Sure.".into();
        assert!(!same_conversation(&stored, &edited));
        assert!(!same_conversation(&stored, &final_only[..2]));
        let mut other = final_only.clone();
        other[0].content = "list dirs".into();
        assert!(!same_conversation(&stored, &other));
    }
}
