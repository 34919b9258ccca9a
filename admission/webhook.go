package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	admissionv1 "k8s.io/api/admission/v1"
)

// Paths the webhook serves (the shipped webhook configurations name them).
const (
	PathValidate = "/validate"
	PathMutate   = "/mutate"
)

// Webhook is the admission webhook: an http.Handler serving PathValidate and
// PathMutate. It is safe for concurrent use.
type Webhook struct {
	checker     Checker
	timeout     time.Duration
	concurrency int
	maxBody     int64
	log         *slog.Logger
	meters      metric.MeterProvider
	tel         telemetry
}

// New returns a webhook that decides images with checker.
func New(checker Checker, opts ...Option) (*Webhook, error) {
	if checker == nil {
		return nil, errors.New("admission: nil checker")
	}
	w := &Webhook{
		checker:     checker,
		timeout:     DefaultTimeout,
		concurrency: DefaultConcurrency,
		maxBody:     DefaultMaxBodyBytes,
		log:         slog.Default(),
		meters:      otel.GetMeterProvider(),
	}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	w.tel = newTelemetry(w.meters)
	return w, nil
}

// ServeHTTP answers POST /validate and POST /mutate with an AdmissionReview.
// A request that is not a well-formed admission.k8s.io/v1 AdmissionReview is
// answered with an HTTP error (the API server then applies the webhook's
// failurePolicy, Fail in the shipped configurations); everything about the
// object under review is answered inside an AdmissionReview.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var mutate bool
	switch r.URL.Path {
	case PathValidate:
	case PathMutate:
		mutate = true
	default:
		httpError(rw, http.StatusNotFound, fmt.Sprintf("no admission webhook at %q: use %s or %s", r.URL.Path, PathValidate, PathMutate))
		return
	}
	review, status, err := w.readReview(rw, r)
	if err != nil {
		w.tel.review(r.Context(), mutate, "", "other", "invalid")
		if status == http.StatusMethodNotAllowed {
			rw.Header().Set("Allow", http.MethodPost)
		}
		httpError(rw, status, err.Error())
		return
	}
	ctx, cancel := w.deadline(r)
	defer cancel()
	resp := w.review(ctx, review.Request, mutate)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	body, err := json.Marshal(out)
	if err != nil { // cannot happen with these types; refuse rather than guess
		httpError(rw, http.StatusInternalServerError, "portcullis: cannot encode the AdmissionReview response: "+err.Error())
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(body)
}

// readReview reads and checks the AdmissionReview, returning the HTTP status
// to answer with when it is unusable.
func (w *Webhook) readReview(rw http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, int, error) {
	if r.Method != http.MethodPost {
		return nil, http.StatusMethodNotAllowed, fmt.Errorf("portcullis: method %s not allowed: an AdmissionReview is POSTed", r.Method)
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("portcullis: content type %q is not application/json", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusBadRequest, fmt.Errorf("portcullis: AdmissionReview larger than %d bytes", w.maxBody)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("portcullis: reading the AdmissionReview: %w", err)
	}
	var review admissionv1.AdmissionReview
	if err := decodeJSON(body, &review); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("portcullis: the body is not an AdmissionReview: %w", err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, http.StatusBadRequest, fmt.Errorf("portcullis: got apiVersion %q kind %q, want admission.k8s.io/v1 AdmissionReview (admissionReviewVersions: [v1])", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, errors.New("portcullis: the AdmissionReview has no request")
	}
	if review.Request.UID == "" {
		return nil, http.StatusBadRequest, errors.New("portcullis: the AdmissionReview request has no uid")
	}
	return &review, 0, nil
}

func httpError(rw http.ResponseWriter, status int, msg string) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(status)
	_, _ = io.WriteString(rw, msg+"\n")
}
