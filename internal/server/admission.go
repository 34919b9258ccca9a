package server

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/admission"
	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/policy"
)

// AdmissionChecker decides the images of an admission review with the
// serving pipeline: resolved through the upstreams, decided through the
// same cache as the proxy's pulls; denials are alerted with the namespace
// and object under review.
type AdmissionChecker struct {
	Pipeline *pipeline.Pipeline
}

// Check implements admission.Checker.
func (c AdmissionChecker) Check(ctx context.Context, image string) (admission.Result, error) {
	ref, d, err := c.Pipeline.CheckImage(pipeline.WithDoor(ctx, pipeline.DoorAdmission), image)
	if err != nil {
		return admission.Result{}, err
	}
	r := admission.Result{Reference: ref.String(), Decision: d, NoUpstream: !ref.Served}
	if !r.NoUpstream {
		r.Digest = d.Subject.Digest
	}
	if d.Outcome == policy.Deny {
		ev := alert.FromDecision(alert.SourceAdmission, time.Now(), d)
		if o, ok := admission.ObjectFrom(ctx); ok {
			ev.Namespace, ev.Object = o.Namespace, o.Kind+"/"+o.Name
		}
		c.Pipeline.Alerts().Notify(ev)
	}
	return r, nil
}
