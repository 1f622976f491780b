package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// listPageSize is the limit asked of each page of GET /orders (the api's
// largest).
const listPageSize = 100

// listFlags are the flags of order list.
type listFlags struct{ json bool }

func (f *listFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&f.json, "json", false, "print the orders as JSON (the api's page format)")
}

// listCmd is `orderflow order list [--json]`: every order of the user,
// newest first, following the cursor to the last page. --json prints
// them as one page (next_cursor null) in the api's own format.
func listCmd(ctx context.Context, c *apiClient, cc clientConfig, args []string, stdout, stderr io.Writer) error {
	var f listFlags
	fl := newFlagSet("order list", stderr, f.define)
	asJSON := &f.json
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return errors.New("usage: orderflow order list [--json]")
	}
	if err := c.authenticate(cc); err != nil {
		return err
	}
	all := httpapi.OrderPage{Orders: []httpapi.OrderView{}}
	for cursor := ""; ; {
		q := url.Values{"limit": {fmt.Sprint(listPageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p httpapi.OrderPage
		a, err := c.do(ctx, "GET", "/orders?"+q.Encode(), nil, nil)
		if err == nil {
			err = c.decode(a, &p, http.StatusOK)
		}
		if err != nil {
			return err
		}
		all.Orders = append(all.Orders, p.Orders...)
		if p.NextCursor == nil || *p.NextCursor == "" {
			break
		}
		cursor = *p.NextCursor
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER_ID\tSTATUS\tAMOUNT\tCREATED_AT")
	for _, o := range all.Orders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.OrderID, o.Status, orderflow.FormatAmount(o.Amount, o.Currency), o.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
