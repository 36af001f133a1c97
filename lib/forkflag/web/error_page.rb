# frozen_string_literal: true

require_relative "page"

module Forkflag
  class Web
    # A page that says what went wrong: an unknown page or flag (404), a
    # request the page cannot read (400), or an error inside the app (500,
    # naming the error's class only).
    class ErrorPage < Page
      # Titles by status.
      TITLES = { 400 => "Bad request", 404 => "Not found", 500 => "Error" }.freeze

      # @return [Integer]
      attr_reader :status

      # @param client [Client]
      # @param request [Request]
      # @param status [Integer] 400, 404 or 500
      # @param message [String] what went wrong, for a person (escaped)
      def initialize(client, request, status:, message:)
        super(client, request)
        @status = status
        @message = message
      end

      # @return [String]
      def title
        TITLES.fetch(status, "Error")
      end

      # @return [Markup]
      def content
        [tag("h1", "#{status} #{title}"), tag("p", @message, class: "message", id: "message"),
         tag("p", [tag("a", "Back to the flags", href: request.href("/flags"))])]
      end
    end
  end
end
