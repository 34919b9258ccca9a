package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/portcullis-dev/portcullis/policy"
)

// Error is a response in the OCI distribution error envelope
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes).
// Handlers return errors; handle() turns them into responses in one place.
type Error struct {
	Status  int
	Code    string
	Message string
	// Header holds extra response headers (e.g. Retry-After).
	Header http.Header
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// specCode is an error code of the distribution spec bound to the HTTP
// status it is sent with, so that no call site can pair a code with another
// status (distribution's registry/api/errcode registers codes the same way).
type specCode struct {
	value  string
	status int
}

// knownCodes holds every code the proxy declares, so a test can check each one
// against the status the spec gives it.
var knownCodes []specCode

func register(value string, status int) specCode {
	c := specCode{value: value, status: status}
	knownCodes = append(knownCodes, c)
	return c
}

// The error codes the proxy sends. UNAVAILABLE and UNKNOWN are not in the OCI
// spec's table; they are distribution's (registry/api/errcode/errors.go), and
// clients know them from there.
var (
	codeDenied       = register("DENIED", http.StatusForbidden)
	codeUnavailable  = register("UNAVAILABLE", http.StatusServiceUnavailable)
	codeNameInvalid  = register("NAME_INVALID", http.StatusBadRequest)
	codeNameUnknown  = register("NAME_UNKNOWN", http.StatusNotFound)
	codeUnsupported  = register("UNSUPPORTED", http.StatusMethodNotAllowed)
	codeDigestInval  = register("DIGEST_INVALID", http.StatusBadRequest)
	codeManifestUnk  = register("MANIFEST_UNKNOWN", http.StatusNotFound)
	codeUnauthorized = register("UNAUTHORIZED", http.StatusUnauthorized)
	codeTooMany      = register("TOOMANYREQUESTS", http.StatusTooManyRequests)
	// codeUnknown is sent only in place of an upstream's unusable code, with
	// the upstream's status (see relayUpstreamError); 500 is its own status.
	codeUnknown = register("UNKNOWN", http.StatusInternalServerError)
)

// errorf is the response for code, with the status the code is bound to.
func errorf(code specCode, format string, args ...any) *Error {
	return &Error{Status: code.status, Code: code.value, Message: fmt.Sprintf(format, args...)}
}

// withHeader adds a response header to e (Retry-After, WWW-Authenticate) and
// returns it.
func (e *Error) withHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(key, value)
	return e
}

// deniedError is the 403 for a denied decision. Never a 404: a 404 would let
// runtimes try the next host as if the image were merely missing.
func deniedError(d policy.Decision) *Error {
	return errorf(codeDenied, "%s", d.Message())
}

// statusOf maps any error to the response the client gets. Anything not
// classified is "could not decide": 503, fail closed.
func statusOf(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		secs := max(1, int(ra.RetryAfter().Round(time.Second)/time.Second))
		return errorf(codeUnavailable, "%s", err.Error()).withHeader("Retry-After", strconv.Itoa(secs))
	}
	var ue *policy.UndecidedError
	if errors.As(err, &ue) {
		return errorf(codeUnavailable, "%s", ue.Error())
	}
	var up *upstreamError
	if errors.As(err, &up) {
		return errorf(codeUnavailable, "portcullis: %s", up.Error())
	}
	return errorf(codeUnavailable, "portcullis: %v", err)
}

type envelope struct {
	Errors []envelopeError `json:"errors"`
}

type envelopeError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes the envelope. HEAD responses carry the status and
// headers only.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := statusOf(err)
	for k, vs := range e.Header {
		w.Header()[k] = vs
	}
	body, _ := json.Marshal(envelope{Errors: []envelopeError{{Code: e.Code, Message: sanitize(e.Message)}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	if e.Status >= 500 {
		log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "error", sanitize(e.Message))
	}
}

// sanitize makes text safe to echo to a client: no control characters (no
// header or log injection, no ANSI escape sequences: ESC goes), no invisible
// format characters (bidi overrides that make a terminal show other text),
// bounded length.
func sanitize(s string) string {
	const max = 1024
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// relayUpstreamError turns a non-success upstream answer into the client's
// response. 4xx answers keep their status and the upstream's error codes
// (a missing manifest is a 404, a rate limit a 429) — they are not decisions
// of ours. 5xx answers become 503: the proxy could not decide.
func relayUpstreamError(registry string, resp *http.Response) *Error {
	var env envelope
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&env)
	msg := fmt.Sprintf("upstream %s answered %s", registry, resp.Status)
	code := codeUnknown.value
	if len(env.Errors) > 0 {
		code = env.Errors[0].Code
		msg += ": " + env.Errors[0].Message
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		// The client cannot fix this by logging in to us: it is the proxy's
		// own upstream credential that was refused. No WWW-Authenticate.
		return errorf(codeUnauthorized, "upstream %s refused the proxy's credentials (%s)", registry, resp.Status)
	case resp.StatusCode == http.StatusTooManyRequests:
		e := errorf(codeTooMany, "%s", msg)
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra != "" {
			e.withHeader("Retry-After", ra)
		}
		return e
	case resp.StatusCode >= 500 || resp.StatusCode < 400:
		return errorf(codeUnavailable, "%s", msg)
	}
	// Any other 4xx is relayed as the upstream gave it: its status with its
	// code, which need not be one of ours, so the pair is not bound here.
	e := &Error{Status: resp.StatusCode, Code: sanitizeCode(code), Message: msg}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// RFC 9110 section 15.5.17: a 416 says how long the blob is, which
		// a client needs to ask again.
		if cr := unsatisfiedRange(resp.Header.Get("Content-Range")); cr != "" {
			e.withHeader("Content-Range", cr)
		}
	}
	return e
}

func sanitizeCode(c string) string {
	for _, r := range c {
		if (r < 'A' || r > 'Z') && r != '_' {
			return codeUnknown.value
		}
	}
	if c == "" || len(c) > 64 {
		return codeUnknown.value
	}
	return c
}

// sanitizeQuoted makes text safe inside a quoted-string header value.
func sanitizeQuoted(s string) string {
	return strings.NewReplacer(`"`, "'", "\\", "/").Replace(sanitize(s))
}

// unsatisfiedRange returns a 416's Content-Range if it has the form RFC
// 9110 gives it ("bytes */<length>"), else "": it is relayed as a header.
func unsatisfiedRange(v string) string {
	n, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes */")
	if !ok {
		return ""
	}
	if _, err := strconv.ParseUint(n, 10, 63); err != nil {
		return ""
	}
	return "bytes */" + n
}

// retryAfter returns an upstream's Retry-After if it is what RFC 9110
// section 10.2.3 allows (delay-seconds or an HTTP-date), else "": the value
// is relayed as a header, so nothing else may pass.
func retryAfter(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return ""
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return strconv.FormatUint(n, 10)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.UTC().Format(http.TimeFormat)
	}
	return ""
}
