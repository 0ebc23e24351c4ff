use crate::cli::Ctx;
use std::io::IsTerminal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the newest events to show first
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: i64,
    /// Keep running and print new events as they are appended
    #[arg(short, long)]
    pub follow: bool,
    /// Poll interval for --follow, in milliseconds
    #[arg(long, default_value_t = 500, hide = true)]
    pub interval_ms: u64,
    /// Every host's log in the fleet's database (store.url), with a host column
    #[arg(long)]
    pub fleet: bool,
    /// With --fleet: only this host's events
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub host: Option<String>,
}

/// A tail line is no table: on a terminal its summary is cut at 100
/// characters so a line stays about one screen line; piped it is whole.
fn summary(ev: &crate::store::events::Event) -> String {
    let s = super::summarize(ev);
    if std::io::stdout().is_terminal() {
        crate::output::clip(&s, 100)
    } else {
        s
    }
}

fn print(ctx: &Ctx, ev: &crate::store::events::Event) -> crate::Result<()> {
    print_on(ctx, None, ev)
}

/// A line; with `host` (a fleet tail) the host first, and in the JSON.
fn print_on(ctx: &Ctx, host: Option<&str>, ev: &crate::store::events::Event) -> crate::Result<()> {
    if ctx.out.json {
        match host {
            Some(h) => {
                let mut v = serde_json::to_value(ev).expect("an event serializes");
                v["host"] = h.into();
                ctx.out.json_line(&v)
            }
            None => ctx.out.json_line(ev),
        }
    } else {
        ctx.out.line(format!(
            "{}{} {} {:<16} {} {} {}",
            host.map(|h| format!("{h} ")).unwrap_or_default(),
            ev.id,
            ev.ts.get(..19).unwrap_or(&ev.ts).replace('T', " "),
            ev.kind,
            crate::output::sanitize(&ev.actor),
            ev.session_id
                .as_deref()
                .map(crate::output::sanitize)
                .unwrap_or_else(|| "-".into()),
            summary(ev)
        ))
    }
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    if !(0..=100_000).contains(&a.lines) {
        return Err(crate::Error::usage("-n must be between 0 and 100000"));
    }
    if a.fleet {
        return fleet(ctx, &a);
    }
    let store = ctx.app.events_ro()?;
    let mut last = 0;
    for ev in store.last(a.lines)? {
        print(ctx, &ev)?;
        last = ev.seq;
    }
    if !a.follow {
        return Ok(());
    }
    if last == 0 {
        last = store.head()?.0;
    }
    loop {
        let batch = store.after(last, 1000)?;
        if batch.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(a.interval_ms.max(50)));
            continue;
        }
        for ev in &batch {
            print(ctx, ev)?;
            last = ev.seq;
        }
    }
}

/// `--fleet`: the newest events of every host (or one), by time, then new
/// ones as any host appends them.
fn fleet(ctx: &Ctx, a: &Args) -> crate::Result<()> {
    use crate::store::pg::PgEventLog;
    if let Some(h) = &a.host {
        crate::store::pg::check_host(h)?;
    }
    let pg = crate::ops::audit::fleet::connect_configured(&ctx.app)?;
    let (events, mut cursor) = PgEventLog::last_events(&pg, a.host.as_deref(), a.lines)?;
    for e in &events {
        print_on(ctx, Some(&e.host), &e.event)?;
    }
    if !a.follow {
        return Ok(());
    }
    loop {
        let (batch, next) = PgEventLog::events_after(&pg, a.host.as_deref(), &cursor, 1000)?;
        cursor = next;
        if batch.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(a.interval_ms.max(50)));
            continue;
        }
        for e in &batch {
            print_on(ctx, Some(&e.host), &e.event)?;
        }
    }
}
