//! The web interface in headless Chromium, driven over WebDriver by `chromedriver`: sign in,
//! generate on the offline provider and watch the files appear, re-open the job from the
//! history, run into the Free plan's limit, and open the queue dashboard with the admin token.
//!
//! `product` walks through the product on the offline provider; `stripe` shows the billing
//! pages with a Stripe subscription from a Stripe stand-in; `orgs` invites a viewer into an
//! org, who then cannot generate there; `sso` signs in with single sign-on through an OpenID
//! provider stand-in's sign-in page (`tests/support/idp.rs`, shared with the API tests);
//! `branding` shows an org's name, colour and logo in the header and on its published app;
//! `uploads` attaches a pasted reference image to a generation; `preview` runs generated apps
//! in the sandboxed preview frame. Each page is saved as a screenshot
//! in `target/browser-artifacts/`, and the browser's log must hold no errors beyond the HTTP
//! answers a step expects (a 429, a 503).
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`); the build
//! script enables it when `/usr/bin/chromedriver` exists or `CHROMEDRIVER` names one.
#![cfg_attr(not(appforge_browser), allow(dead_code, unused_imports))]

mod branding;
mod orgs;
mod preview;
mod product;
mod sso;
mod stripe;
mod support;
mod uploads;
