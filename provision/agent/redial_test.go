package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/provision/remote"
)

// TestFaultKilledLabAgentIsReachedAgain: the link to the lab's agent breaks (the agent killed
// under provisioning: the chaos soak's sigkill-host-agent failed `labctl provision` at its next
// check). A check is asked again through a new agent and succeeds; a command that changes
// something keeps its error (its end is unknown), and the next one goes through the new agent.
func TestFaultKilledLabAgentIsReachedAgain(t *testing.T) {
	faulttest.Count(t, "fault", "lab-agent-killed-under-a-check")
	first, second := newHost(t), newHost(t)
	dials := 0
	var log strings.Builder
	v := &VMTarget{Client: first.client, Log: &log, Redial: func(context.Context) (*Client, error) {
		dials++
		return second.client, nil
	}}
	ctx := context.Background()
	if r, err := v.exec(ctx, path(1), "level0", remote.Cmd{Line: "echo before"}); err != nil || r.Stdout != "before\n" {
		t.Fatalf("before the break: %+v %v", r, err)
	}
	first.client.Close() // the link to the lab's agent ends under the client
	<-first.client.Done()
	r, err := v.exec(remote.Reading(ctx), path(1), "level0", remote.Cmd{Line: "echo checked"})
	if err != nil || r.Stdout != "checked\n" || dials != 1 {
		t.Fatalf("a check after the break: %+v %v (%d dials)\n%s", r, err, dials, log.String())
	}
	if !strings.Contains(log.String(), "asked again through a new one") {
		t.Errorf("the log does not say the check was asked again:\n%s", log.String())
	}
	second.client.Close()
	<-second.client.Done()
	third := newHost(t)
	v.Redial = func(context.Context) (*Client, error) { dials++; return third.client, nil }
	_, err = v.exec(ctx, path(1), "level0", remote.Cmd{Line: "touch changed"})
	var broke *LinkError
	if !errors.As(err, &broke) || dials != 2 {
		t.Fatalf("a change whose link broke must keep its error (its end is unknown): %v (%d dials)", err, dials)
	}
	if r, err := v.exec(ctx, path(1), "level0", remote.Cmd{Line: "echo next"}); err != nil || r.Stdout != "next\n" || dials != 2 {
		t.Fatalf("the next command does not go through the new agent: %+v %v (%d dials)", r, err, dials)
	}
}
