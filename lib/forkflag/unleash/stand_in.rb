# frozen_string_literal: true

# Loaded by this gem's lib/unleash.rb and lib/unleash/*.rb, which stand in
# for the official SDK's files of those names: `require "unleash"` (and
# "unleash/context", ...) loads the compatibility layer, or does nothing
# once it is loaded (which refuses to load beside the official gem).
require_relative "../unleash"
