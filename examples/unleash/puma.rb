# frozen_string_literal: true

# The official Unleash README's Puma recipes, unchanged, on forkflag's
# compatibility layer (UNLEASH_RECIPE selects one; the app is
# examples/unleash/config.ru):
#
# - "preload": preload_app!, the client created in on_worker_boot and shut
#   down in on_worker_shutdown;
# - "no_preload": the same hooks without preload_app!, the client's options
#   given to Client.new;
# - "initializer" (forkflag's simpler one): preload_app! and the client
#   created once in the app's initializer, before the fork; no hooks.
#
#   UNLEASH_RECIPE=preload UNLEASH_URL=... UNLEASH_TOKEN=... UNLEASH_APP_NAME=... \
#     puma -C examples/unleash/puma.rb examples/unleash/config.ru
require "unleash"

port Integer(ENV.fetch("PORT", "9292")), ENV.fetch("HOST", "127.0.0.1")
workers Integer(ENV.fetch("WORKERS", "3"))
threads 1, 4
worker_shutdown_timeout 10

case ENV.fetch("UNLEASH_RECIPE", "initializer")
when "preload"
  preload_app!

  on_worker_boot do
    ::UNLEASH = Unleash::Client.new
  end

  on_worker_shutdown do
    ::UNLEASH.shutdown
  end
when "no_preload"
  on_worker_boot do
    ::UNLEASH = Unleash::Client.new(
      app_name: ENV.fetch("UNLEASH_APP_NAME"),
      url: ENV.fetch("UNLEASH_URL"),
      refresh_interval: Float(ENV.fetch("UNLEASH_REFRESH_INTERVAL", "15")),
      custom_http_headers: { Authorization: ENV.fetch("UNLEASH_TOKEN") }
    )
  end

  on_worker_shutdown do
    ::UNLEASH.shutdown
  end
else
  preload_app!
end
