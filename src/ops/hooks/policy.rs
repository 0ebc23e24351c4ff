//! Tool policy: which tools a role's profile allows, from Hermes' toolsets.

/// Hermes 0.19.0's toolsets with their (resolved) tools: `toolsets.py`
/// `TOOLSETS` plus the registry's own toolset names (`browser-cdp`).
/// Platform bundles (`hermes-cli`, `hermes-api-server`, ...) are left out on
/// purpose: they mean "everything" and are not operator policy.
#[rustfmt::skip]
 static TOOLSETS: &[(&str, &[&str])] = &[
    ("browser", &["browser_back", "browser_cdp", "browser_click", "browser_console", "browser_dialog", "browser_get_images", "browser_navigate", "browser_press", "browser_scroll", "browser_snapshot", "browser_type", "browser_vision", "web_search"]),
    ("browser-cdp", &["browser_cdp", "browser_dialog"]),
    ("clarify", &["clarify"]),
    ("code_execution", &["execute_code"]),
    ("coding", &["browser_back", "browser_cdp", "browser_click", "browser_console", "browser_dialog", "browser_get_images", "browser_navigate", "browser_press", "browser_scroll", "browser_snapshot", "browser_type", "browser_vision", "clarify", "close_terminal", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "read_terminal", "search_files", "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze", "web_extract", "web_search", "write_file"]),
    ("computer_use", &["computer_use"]),
    ("cronjob", &["cronjob"]),
    ("debugging", &["patch", "process", "read_file", "search_files", "terminal", "web_extract", "web_search", "write_file"]),
    ("delegation", &["delegate_task"]),
    ("discord", &["discord"]),
    ("discord_admin", &["discord_admin"]),
    ("feishu_doc", &["feishu_doc_read"]),
    ("feishu_drive", &["feishu_drive_add_comment", "feishu_drive_list_comment_replies", "feishu_drive_list_comments", "feishu_drive_reply_comment"]),
    ("file", &["patch", "read_file", "search_files", "write_file"]),
    ("homeassistant", &["ha_call_service", "ha_get_state", "ha_list_entities", "ha_list_services"]),
    ("image_gen", &["image_generate"]),
    ("kanban", &["kanban_attach", "kanban_attach_url", "kanban_attachments", "kanban_block", "kanban_comment", "kanban_complete", "kanban_create", "kanban_heartbeat", "kanban_link", "kanban_list", "kanban_show", "kanban_unblock"]),
    ("memory", &["memory"]),
    ("project", &["project_create", "project_list", "project_switch"]),
    ("safe", &["image_generate", "vision_analyze", "web_extract", "web_search"]),
    ("search", &["web_search"]),
    ("session_search", &["session_search"]),
    ("skills", &["skill_manage", "skill_view", "skills_list"]),
    ("spotify", &["spotify_albums", "spotify_devices", "spotify_library", "spotify_playback", "spotify_playlists", "spotify_queue", "spotify_search"]),
    ("terminal", &["close_terminal", "process", "read_terminal", "terminal"]),
    ("todo", &["todo"]),
    ("tts", &["text_to_speech"]),
    ("video", &["video_analyze"]),
    ("video_gen", &["video_generate", "xai_video_edit", "xai_video_extend"]),
    ("vision", &["vision_analyze"]),
    ("web", &["web_extract", "web_search"]),
    ("x_search", &["x_search"]),
    ("yuanbao", &["yb_query_group_info", "yb_query_group_members", "yb_search_sticker", "yb_send_dm", "yb_send_sticker"]),
];

/// Scenario toolsets that bundle tools of several basic toolsets.
const BUNDLES: &[&str] = &["coding", "debugging", "safe"];

/// The toolsets (of Hermes 0.19.0) that contain `tool`; MCP tools
/// (`mcp__<server>__<tool>`) are in `mcp-<server>`.
pub fn toolsets_for_tool(tool: &str) -> Vec<String> {
    let mut v: Vec<String> = TOOLSETS
        .iter()
        .filter(|(_, tools)| tools.contains(&tool))
        .map(|(name, _)| name.to_string())
        .collect();
    if let Some(rest) = tool.strip_prefix("mcp__") {
        if let Some((server, _)) = rest.split_once("__") {
            v.push(format!("mcp-{server}"));
        }
    }
    v
}

/// Hermes' `sanitize_mcp_name_component`: anything outside `[A-Za-z0-9_]` → `_`.
fn sanitize_mcp(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `agent.enabled_toolsets` allows `tool`: a listed toolset contains
/// it, a listed `mcp-<server>` is its MCP server, or the entry names the tool
/// itself (the way to allow a plugin's tool, whose toolset we cannot know).
pub fn tool_allowed(tool: &str, enabled: &[String]) -> bool {
    enabled.iter().any(|t| {
        if t == tool {
            return true;
        }
        if let Some(server) = t.strip_prefix("mcp-") {
            let prefix = format!("mcp__{}__", sanitize_mcp(server));
            if tool.starts_with(&prefix) {
                return true;
            }
        }
        TOOLSETS
            .iter()
            .any(|(name, tools)| *name == t.as_str() && tools.contains(&tool))
    })
}

/// The block message the model sees: names the tool, its toolset and what is allowed.
pub fn block_reason(tool: &str, enabled: &[String]) -> String {
    let all = toolsets_for_tool(tool);
    // Name the tool's own toolset, not the scenario bundles that include it.
    let own: Vec<String> = all
        .iter()
        .filter(|t| !BUNDLES.contains(&t.as_str()))
        .cloned()
        .collect();
    let sets = if own.is_empty() { all } else { own };
    let belongs = if sets.is_empty() {
        "which is in no toolset hermes-operator knows".to_string()
    } else {
        format!("toolset {}", sets.join(", "))
    };
    let allowed = if enabled.is_empty() {
        "none".to_string()
    } else {
        enabled.join(", ")
    };
    format!(
        "Blocked by hermes-operator policy: the tool `{tool}` ({belongs}) is not enabled for operator sessions. \
         Allowed toolsets: {allowed}. Do not retry it; use an allowed tool or tell the user this is not available here."
    )
}
