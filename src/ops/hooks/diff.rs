//! A small unified diff (for --dry-run and confirmations).

pub fn unified_diff(name: &str, a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut pre = 0;
    while pre < n && pre < m && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < n - pre && suf < m - pre && a[n - 1 - suf] == b[m - 1 - suf] {
        suf += 1;
    }
    let (am, bm) = (&a[pre..n - suf], &b[pre..m - suf]);
    // LCS over the changed middle (config files are small).
    let mut ops: Vec<(char, &str)> = Vec::new();
    if am.len().saturating_mul(bm.len()) <= 4_000_000 {
        let mut dp = vec![vec![0u32; bm.len() + 1]; am.len() + 1];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                dp[i][j] = if am[i] == bm[j] {
                    dp[i + 1][j + 1] + 1
                } else {
                    dp[i + 1][j].max(dp[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                ops.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if j < bm.len() && (i == am.len() || dp[i][j + 1] >= dp[i + 1][j]) {
                ops.push(('+', bm[j]));
                j += 1;
            } else {
                ops.push(('-', am[i]));
                i += 1;
            }
        }
    } else {
        ops.extend(am.iter().map(|l| ('-', *l)));
        ops.extend(bm.iter().map(|l| ('+', *l)));
    }
    if ops.iter().all(|(c, _)| *c == ' ') {
        return String::new();
    }
    let ctx = 2;
    let lead = pre.min(ctx);
    let trail = suf.min(ctx);
    let mut out = format!("--- {name}\n+++ {name}\n");
    let old_len = lead + ops.iter().filter(|(c, _)| *c != '+').count() + trail;
    let new_len = lead + ops.iter().filter(|(c, _)| *c != '-').count() + trail;
    out.push_str(&format!(
        "@@ -{},{} +{},{} @@\n",
        pre - lead + 1,
        old_len,
        pre - lead + 1,
        new_len
    ));
    for l in &a[pre - lead..pre] {
        out.push_str(&format!(" {l}\n"));
    }
    for (c, l) in &ops {
        out.push_str(&format!("{c}{l}\n"));
    }
    for l in &a[n - suf..n - suf + trail] {
        out.push_str(&format!(" {l}\n"));
    }
    out
}
