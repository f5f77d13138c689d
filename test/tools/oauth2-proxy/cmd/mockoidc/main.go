// Command mockoidc serves github.com/oauth2-proxy/mockoidc, a test OpenID Connect provider, on
// a given address, so that oauth2-proxy can sign users in during conformance tests without a real
// identity provider.
//
// On start it prints one line, "mockoidc: config " followed by JSON (issuer, client id and
// secret, endpoints), for the test to wait for and read. Sign-ins take their user from a FIFO
// queue that the test fills over HTTP, on the same address:
//
//	POST /mockoidc/users  {"email": "alice@example.com", "groups": ["admins"]}
//
// queues a user (email verified; subject and preferred_username default to the email) for the
// next sign-in; with the queue empty, a sign-in gets mockoidc's default user (jane.doe@example.com,
// groups engineering and design). Groups reach the tokens only when the client asks for the
// "groups" scope.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// usersPath is outside mockoidc's /oidc prefix, so it can never shadow an OIDC endpoint.
const usersPath = "/mockoidc/users"

type config struct {
	Issuer                string `json:"issuer"`
	ClientID              string `json:"clientID"`
	ClientSecret          string `json:"clientSecret"`
	DiscoveryEndpoint     string `json:"discoveryEndpoint"`
	AuthorizationEndpoint string `json:"authorizationEndpoint"`
	TokenEndpoint         string `json:"tokenEndpoint"`
	UserinfoEndpoint      string `json:"userinfoEndpoint"`
	JWKSEndpoint          string `json:"jwksEndpoint"`
}

type user struct {
	Subject           string   `json:"subject"`
	Email             string   `json:"email"`
	PreferredUsername string   `json:"preferredUsername"`
	Groups            []string `json:"groups"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the provider on (port 0: any free port)")
	clientID := flag.String("client-id", "", "the OAuth client id to accept (empty: a random one, printed)")
	clientSecret := flag.String("client-secret", "", "the OAuth client secret to accept (empty: a random one, printed)")
	accessTTL := flag.Duration("access-ttl", 10*time.Minute, "lifetime of access and ID tokens")
	flag.Parse()
	if err := run(*listen, *clientID, *clientSecret, *accessTTL); err != nil {
		log.Fatalf("mockoidc: %v", err)
	}
}

func run(listen, clientID, clientSecret string, accessTTL time.Duration) error {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	if clientID != "" {
		m.ClientID = clientID
	}
	if clientSecret != "" {
		m.ClientSecret = clientSecret
	}
	m.AccessTTL = accessTTL
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	// mockoidc's Start serves a mux of its own with no room for the users endpoint, so the
	// handlers are mounted here; mockoidc derives its issuer from Server.Addr.
	mux := http.NewServeMux()
	mux.HandleFunc(mockoidc.AuthorizationEndpoint, m.Authorize)
	mux.HandleFunc(mockoidc.TokenEndpoint, m.Token)
	mux.HandleFunc(mockoidc.UserinfoEndpoint, m.Userinfo)
	mux.HandleFunc(mockoidc.JWKSEndpoint, m.JWKS)
	mux.HandleFunc(mockoidc.DiscoveryEndpoint, m.Discovery)
	mux.HandleFunc("POST "+usersPath, func(w http.ResponseWriter, r *http.Request) {
		queueUser(m, w, r)
	})
	m.Server = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	line, err := json.Marshal(config{
		Issuer:                m.Issuer(),
		ClientID:              m.ClientID,
		ClientSecret:          m.ClientSecret,
		DiscoveryEndpoint:     m.DiscoveryEndpoint(),
		AuthorizationEndpoint: m.AuthorizationEndpoint(),
		TokenEndpoint:         m.TokenEndpoint(),
		UserinfoEndpoint:      m.UserinfoEndpoint(),
		JWKSEndpoint:          m.JWKSEndpoint(),
	})
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	fmt.Fprintf(os.Stdout, "mockoidc: config %s\n", line)
	if err := m.Server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

func queueUser(m *mockoidc.MockOIDC, w http.ResponseWriter, r *http.Request) {
	var u user
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		http.Error(w, fmt.Sprintf("decode user: %v", err), http.StatusBadRequest)
		return
	}
	if u.Email == "" {
		http.Error(w, "user: email is required", http.StatusBadRequest)
		return
	}
	if u.Subject == "" {
		u.Subject = u.Email
	}
	if u.PreferredUsername == "" {
		u.PreferredUsername = u.Email
	}
	m.QueueUser(&mockoidc.MockUser{
		Subject:           u.Subject,
		Email:             u.Email,
		EmailVerified:     true,
		PreferredUsername: u.PreferredUsername,
		Groups:            u.Groups,
	})
	log.Printf("mockoidc: queued user %s (groups %v) for the next sign-in", u.Email, u.Groups)
	w.WriteHeader(http.StatusNoContent)
}
