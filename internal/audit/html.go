package audit

import (
	"html/template"
	"io"
	"time"
)

// reportHTML is a self-contained page: no script, no external resource, so
// it can be mailed or archived as it is. html/template escapes every value.
var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":    func(s Summary, n int) string { return template.HTMLEscapeString(formatPct(s.Percent(n))) },
	"join":   joinOr,
	"slsa":   slsaText,
	"slsaln": slsaLine,
	"time":   func(t time.Time) string { return t.Format(time.RFC3339) },
	"nsKeys": sortedKeys,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>portcullis audit</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.high{color:#b00}.medium{color:#a60}.low{color:#070}</style>
</head><body>
<h1>Supply-chain compliance report</h1>
<p>Generated {{time .Generated}}.</p>
{{with .Summary}}<table id="summary">
<tr><th>images</th><td>{{.Total}}</td></tr>
<tr><th>allowed / denied / undecided</th><td>{{.Allowed}} / {{.Denied}} / {{.Undecided}}</td></tr>
<tr><th>signed</th><td>{{.Signed}} ({{pct . .Signed}})</td></tr>
<tr><th>verified SBOM</th><td>{{.WithSBOM}} ({{pct . .WithSBOM}})</td></tr>
<tr><th>pinned by digest</th><td>{{.Pinned}} ({{pct . .Pinned}})</td></tr>
<tr><th>SLSA build levels</th><td>{{slsaln .}}</td></tr>
<tr><th>risk</th><td class="{{.Risk}}">{{.Risk}}</td></tr>
</table>{{end}}
<h2>Images</h2>
<table id="images"><tr><th>image</th><th>outcome</th><th>signed by</th><th>SBOM</th><th>SLSA</th><th>pinned</th><th>risk</th><th>reason</th></tr>
{{range .Images}}<tr><td><code>{{.Image}}</code></td><td>{{.Outcome}}</td><td>{{join .Signers "-"}}</td><td>{{.SBOM}}</td><td>{{slsa .}}</td><td>{{.Pinned}}</td><td class="{{.Risk}}">{{.Risk}}</td><td>{{if .Error}}{{.Error}}{{else}}{{.Reason}}{{end}}</td></tr>
{{end}}</table>
{{if .Summary.Unsigned}}<h2>Unsigned</h2><ul>{{range .Summary.Unsigned}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{if .Summary.UnpinnedThirdParty}}<h2>Unpinned third-party images</h2><ul>{{range .Summary.UnpinnedThirdParty}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{if .Namespaces}}<h2>Namespaces</h2>
<table id="namespaces"><tr><th>namespace</th><th>images</th><th>signed</th><th>verified SBOM</th><th>denied</th><th>risk</th></tr>
{{range $ns := nsKeys .Namespaces}}{{with index $.Namespaces $ns}}<tr><td>{{$ns}}</td><td>{{.Total}}</td><td>{{pct . .Signed}}</td><td>{{pct . .WithSBOM}}</td><td>{{.Denied}}</td><td class="{{.Risk}}">{{.Risk}}</td></tr>
{{end}}{{end}}</table>{{end}}
</body></html>
`))

func writeHTML(w io.Writer, r *Report) error { return reportHTML.Execute(w, r) }
