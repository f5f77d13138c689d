package kube

import "context"

func (c *Client) waitGates(ctx context.Context, level []planned, opts ApplyOptions, rep Reporter) error {
	return nil
}
