package main

import (
	"context"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
)

// networkHost is where a network command acts: this host's engine,
// directly, or a remote through its client.
type networkHost interface {
	create(ctx context.Context, name string, cfg map[string]string) error
	info(ctx context.Context, name string) (*api.Network, []api.NetworkLease, error)
	update(ctx context.Context, name string, set map[string]string, unset []string) error
	remove(ctx context.Context, name string) error
}

type localNetworks struct{ e *engine.Engine }

func (l localNetworks) create(ctx context.Context, name string, cfg map[string]string) error {
	return l.e.CreateNetwork(ctx, name, cfg)
}

func (l localNetworks) info(_ context.Context, name string) (*api.Network, []api.NetworkLease, error) {
	return l.e.NetworkInfo(name)
}

func (l localNetworks) update(ctx context.Context, name string, set map[string]string, unset []string) error {
	return l.e.SetNetwork(ctx, name, set, unset)
}

func (l localNetworks) remove(ctx context.Context, name string) error {
	return l.e.DeleteNetwork(ctx, name)
}

type remoteNetworks struct{ cl *client.Client }

func (r remoteNetworks) create(ctx context.Context, name string, cfg map[string]string) error {
	return r.cl.CreateNetwork(ctx, api.NetworksPost{Name: name, Config: cfg})
}

func (r remoteNetworks) info(ctx context.Context, name string) (*api.Network, []api.NetworkLease, error) {
	n, _, err := r.cl.Network(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	leases, err := r.cl.NetworkLeases(ctx, name)
	return n, leases, err
}

// update is a PATCH: the keys unset go as "", which the server removes.
func (r remoteNetworks) update(ctx context.Context, name string, set map[string]string, unset []string) error {
	return r.cl.PatchNetwork(ctx, name, api.NetworkPut{Config: patchConfig(set, unset)}, "")
}

func (r remoteNetworks) remove(ctx context.Context, name string) error {
	return r.cl.DeleteNetwork(ctx, name)
}
