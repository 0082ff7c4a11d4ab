// Parse LogQL and PromQL with the grammars Grafana's query editors use.
// stdin: JSON [{"lang": "logql"|"promql", "expr": "..."}]
// stdout: JSON [{"errors": [{"at", "near"}], "metrics": [...], "selectorLabels": [...]}] in the same order.
// The lezer parsers always return a tree; a syntax error is an error node (⚠) in it.
import { readFileSync } from "node:fs";
import { parser as promql } from "@prometheus-io/lezer-promql";
import { parser as logql } from "@grafana/lezer-logql";

const PARSERS = { promql, logql };

function analyse(lang, expr) {
  const parser = PARSERS[lang];
  if (!parser) throw new Error(`unknown query language ${JSON.stringify(lang)}; use one of ${Object.keys(PARSERS)}`);
  const errors = [], metrics = new Set(), selectorLabels = new Set();
  const text = (n) => expr.slice(n.from, n.to);
  parser.parse(expr).iterate({
    enter(ref) {
      if (ref.type.isError) errors.push({ at: ref.from, near: expr.slice(Math.max(0, ref.from - 20), ref.to + 20) });
      // PromQL: the metric name of a selector (foo in foo{...}).
      if (lang === "promql" && ref.name === "Identifier" && ref.node.parent?.name === "VectorSelector") metrics.add(text(ref));
      // LogQL: the label names of the stream selector ({job="trading"}).
      if (lang === "logql" && ref.name === "Identifier" && ref.node.parent?.name === "Matcher"
          && ref.node.parent.parent?.name === "Matchers") selectorLabels.add(text(ref));
    },
  });
  return { errors, metrics: [...metrics].sort(), selectorLabels: [...selectorLabels].sort() };
}

const queries = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(queries.map((q) => analyse(q.lang, q.expr))));
