#!/bin/sh
# Daily usage report from `hermes-operator audit daily --json`, shaped with jq.
#   examples/daily_report.sh [YYYY-MM-DD] [TZ]
# e.g. from cron at 00:10:  10 0 * * * /path/daily_report.sh "$(date -d yesterday +\%F)" Asia/Shanghai
# Prints the day's totals, then one line per user sorted by cost, then per model.
set -eu
DATE=${1:-$(date -u +%F)}
TZONE=${2:-UTC}
hermes-operator audit daily --date "$DATE" --tz "$TZONE" --json | jq -r '
  "Hermes operator usage \(.date) (\(.tz)): \(.totals.sessions) sessions, \(.totals.messages) messages, "
  + "\(.totals.llm_calls) LLM calls, \(.totals.input_tokens)+\(.totals.output_tokens) tokens, "
  + "$\(.totals.cost_usd * 10000 | round / 10000)",
  "",
  "user\tsessions\tllm_calls\tin_tokens\tout_tokens\tcost_usd",
  (.by_user | sort_by(-.cost_usd)[] |
    "\(.username)\t\(.sessions)\t\(.llm_calls)\t\(.input_tokens)\t\(.output_tokens)\t\(.cost_usd * 10000 | round / 10000)"),
  "",
  "model\tllm_calls\tcost_usd",
  (.by_model | sort_by(-.cost_usd)[] | "\(.model // "(unknown)")\t\(.llm_calls)\t\(.cost_usd * 10000 | round / 10000)")
'
