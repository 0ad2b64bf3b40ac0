package appliance

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// group runs the appliance's components, each in its own goroutine. The first one
// to fail stops all the others; all of them stop when the parent context is done.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error // the first failure
}

func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancel(parent)
	return &group{ctx: ctx, cancel: cancel}
}

// Go starts a component. It must run until its context is done: returning earlier,
// even without an error, stops the appliance, since a part of the site would be
// missing.
func (g *group) Go(name string, run func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := run(g.ctx)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			g.fail(fmt.Errorf("%s: %w", name, err))
		case g.ctx.Err() == nil:
			g.fail(fmt.Errorf("%s stopped on its own", name))
		}
	}()
}

func (g *group) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
	g.cancel()
}

// Wait waits for every component to return and gives the first failure, or nil if
// they stopped because the parent context was done.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
