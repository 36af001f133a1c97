# frozen_string_literal: true

# Spring restarts the preloaded app when these change.
Spring.watch("config/flags.json")
