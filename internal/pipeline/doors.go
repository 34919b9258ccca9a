package pipeline

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/policy"
)

// Door names who asks the pipeline. Decisions are the same whatever the
// door (fact 11); what differs is who reports a denial: the proxy's are
// alerted here, admission and the audit alert with their own context
// (namespace, object, finding), and `portcullis verify` does not alert.
type Door string

// The doors.
const (
	DoorProxy     Door = "proxy"
	DoorAdmission Door = "admission"
	DoorAudit     Door = "audit"
	DoorVerify    Door = "verify"
)

type doorKey struct{}

// WithDoor marks ctx as coming through door.
func WithDoor(ctx context.Context, door Door) context.Context {
	return context.WithValue(ctx, doorKey{}, door)
}

// doorOf is the door ctx came through: the proxy's HTTP requests carry none.
func doorOf(ctx context.Context) Door {
	if d, ok := ctx.Value(doorKey{}).(Door); ok {
		return d
	}
	return DoorProxy
}

// alerting is the decider the proxy asks: the chain, with the denials of
// the proxy's own requests sent as alerts (deduplicated per digest and rule
// by the dispatcher, so a cached denial asked again is not a new message).
type alerting struct {
	*reloader
	alerts *alert.Dispatcher // nil: no alerts configured (Notify is a no-op)
	now    func() time.Time
}

func (a *alerting) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	d, err := a.reloader.Decide(ctx, s)
	if err == nil && d.Outcome == policy.Deny && doorOf(ctx) == DoorProxy {
		a.alerts.Notify(alert.FromDecision(alert.SourceProxy, a.now(), d))
	}
	return d, err
}
