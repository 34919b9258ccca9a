package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/inventory"
)

// Querier is what the page and the API need of an inventory store.
type Querier interface {
	Query(ctx context.Context, q inventory.Query) (inventory.Page, error)
}

// Sources are what the status page shows. Every field may be nil.
type Sources struct {
	// Inventory answers searches and the API; nil means recording is off.
	Inventory Querier
	// OffReason says why Inventory is nil, e.g. "inventory.driver: none".
	OffReason string
	// Recent holds the decisions made since start.
	Recent *Recent
	// CacheStats reads the decision cache's counters.
	CacheStats func() cache.Stats
	// RecorderStats reads the inventory recorder's counts (records
	// written, dropped with the queue full, lost to failed writes).
	RecorderStats func() inventory.Stats
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives errors of inventory queries; default discards.
	Log *slog.Logger
	// CanRead, when set, says whether the request's client may see an
	// image ("<registry>/<repository>"): decisions and results of images
	// it may not read through the proxy are left out (proxy.Access.CanRead
	// behind Access.Guard). A page may then hold fewer than its size.
	CanRead func(ctx context.Context, image string) bool
}

// visible keeps the images the request's client may read.
func (h *handler) visible(r *http.Request, images []inventory.Image) []inventory.Image {
	if h.src.CanRead == nil {
		return images
	}
	out := images[:0:0]
	for _, im := range images {
		if h.src.CanRead(r.Context(), im.Registry+"/"+im.Repository) {
			out = append(out, im)
		}
	}
	return out
}

// visibleEntries keeps the decisions about images the client may read.
func (h *handler) visibleEntries(r *http.Request, es []Entry) []Entry {
	if h.src.CanRead == nil {
		return es
	}
	out := es[:0:0]
	for _, e := range es {
		if h.src.CanRead(r.Context(), e.Image) {
			out = append(out, e)
		}
	}
	return out
}

// searchPageSize is how many results one search page shows.
const searchPageSize = 50

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).ParseFS(templateFS, "templates/*.html"))

type handler struct {
	src Sources
	mux *http.ServeMux
}

// New returns the handler of GET /ui, GET /ui/search and
// GET /api/v1/inventory/images. Mount it on the admin listener, behind
// the same access control as the proxy.
func New(src Sources) http.Handler {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Log == nil {
		src.Log = slog.New(slog.DiscardHandler)
	}
	if src.Recent == nil {
		src.Recent = NewRecent(1)
	}
	h := &handler{src: src, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /ui", h.status)
	h.mux.HandleFunc("GET /ui/search", h.search)
	h.mux.HandleFunc("GET /api/v1/inventory/images", h.api)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No script may run, no style or image may be fetched from elsewhere,
	// forms go back here only, and no other site may frame the page.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// view is what the templates render.
type view struct {
	Now       time.Time
	Off       string // non-empty: inventory recording is off, and why
	Shares    Shares
	CacheRate string
	CacheSeen bool
	Cache     cache.Stats
	Recorder  *inventory.Stats
	Denials   []Entry
	Decisions []Entry
	// Search
	Q        string
	Searched bool
	Error    string
	Results  []inventory.Image
	Next     string
}

func (h *handler) base() view {
	v := view{Now: h.src.Now()}
	if h.src.Inventory == nil {
		v.Off = "inventory recording is off"
		if h.src.OffReason != "" {
			v.Off += ": " + h.src.OffReason
		}
	}
	if h.src.CacheStats != nil {
		v.Cache = h.src.CacheStats()
		v.CacheSeen = true
		v.CacheRate = hitRate(v.Cache)
	}
	if h.src.RecorderStats != nil && h.src.Inventory != nil {
		st := h.src.RecorderStats()
		v.Recorder = &st
	}
	return v
}

// hitRate is the share of decisions answered from memory (own or
// inherited) among all that asked the cache; "n/a" before the first.
func hitRate(s cache.Stats) string {
	hits := s.Hits + s.Inherited
	total := hits + s.Misses
	if total == 0 {
		return "n/a"
	}
	return formatPercent(float64(hits) / float64(total))
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	v := h.base()
	v.Decisions = h.visibleEntries(r, h.src.Recent.Decisions())
	v.Denials = h.visibleEntries(r, h.src.Recent.Denials())
	v.Shares = shares(v.Decisions)
	h.render(w, r, http.StatusOK, "status.html", v)
}

func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	v := h.base()
	v.Q = r.URL.Query().Get("q")
	v.Searched = true
	status := http.StatusOK
	switch q, err := ParseSearch(v.Q); {
	case err != nil:
		status, v.Error = http.StatusBadRequest, err.Error()
	case h.src.Inventory == nil:
		status, v.Error = http.StatusServiceUnavailable, v.Off
	default:
		q.Cursor, q.Limit = r.URL.Query().Get("cursor"), searchPageSize
		page, err := h.src.Inventory.Query(r.Context(), q)
		if err != nil {
			status, v.Error = h.queryFailed(r, err)
			break
		}
		v.Results, v.Next = h.visible(r, page.Images), page.Next
	}
	h.render(w, r, status, "search.html", v)
}

// queryFailed maps a store's error to a status and a message: a bad
// query is the client's (400, said as is); anything else is the store's
// (503, logged, not shown: it may name files and hosts).
func (h *handler) queryFailed(r *http.Request, err error) (int, string) {
	if errors.Is(err, inventory.ErrQuery) || errors.Is(err, inventory.ErrCursor) {
		return http.StatusBadRequest, err.Error()
	}
	h.src.Log.ErrorContext(r.Context(), "inventory query failed", "error", err)
	return http.StatusServiceUnavailable, "the inventory could not be queried; the server log says why"
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, v); err != nil {
		h.src.Log.ErrorContext(r.Context(), "rendering the status page", "page", name, "error", err)
	}
}

func (h *handler) api(w http.ResponseWriter, r *http.Request) {
	if h.src.Inventory == nil {
		h.apiError(w, http.StatusServiceUnavailable, h.base().Off)
		return
	}
	q, err := queryFromParams(r.URL.Query(), h.src.Now())
	if err != nil {
		h.apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := h.src.Inventory.Query(r.Context(), q)
	if err != nil {
		status, msg := h.queryFailed(r, err)
		h.apiError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, NewPageJSON(h.visible(r, page.Images), page.Next))
}

func (h *handler) apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
