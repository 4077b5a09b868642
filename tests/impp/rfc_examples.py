"""Examples printed in RFC 3862, RFC 3863 and RFC 3922, copied here with their source.

CPIM examples are written with the RFC's per-line tags removed and CRLF line ends restored
(RFC 3862 §2.2 requires CRLF; the RFC text shows plain lines). PIDF examples are verbatim,
including the RFCs' indentation.
"""

from __future__ import annotations


def crlf(text: str) -> bytes:
    """Join lines with CRLF, as Message/CPIM requires."""
    return "\r\n".join(text.split("\n")).encode("utf-8")


# RFC 3862 §5.1 "An Example Message/CPIM Message" (m:, s:, h:, e: tags removed).
RFC3862_5_1 = crlf(
    """Content-type: Message/CPIM

From: MR SANDERS <im:piglet@100akerwood.com>
To: Depressed Donkey <im:eeyore@100akerwood.com>
DateTime: 2000-12-13T13:40:00-08:00
Subject: the weather will be fine today
Subject:;lang=fr beau temps prevu pour aujourd'hui
NS: MyFeatures <mid:MessageFeatures@id.foo.com>
Require: MyFeatures.VitalMessageOption
MyFeatures.VitalMessageOption: Confirmation-requested
MyFeatures.WackyMessageOption: Use-silly-font

Content-type: text/xml; charset=utf-8
Content-ID: <1234567890@foo.com>

<body>
Here is the text of my message.
</body>"""
)

# RFC 3862 §2.2 examples of message headers, §2.4 of encapsulated content.
RFC3862_2_2_HEADERS = [
    "To: Pooh Bear <im:pooh@100akerwood.com>",
    "From: <im:piglet@100akerwood.com>",
    "DateTime: 2001-02-02T10:48:54-05:00",
]
RFC3862_2_4_CONTENT = crlf(
    """Content-Type: text/plain; charset=utf-8
Content-ID: <1234567890@foo.com>

This is my encapsulated text message content"""
)
# RFC 3862 §3.3, §3.4, §4.1-§4.7 header examples.
RFC3862_HEADER_EXAMPLES = [
    "Subject:;lang=fr Objet de message",
    "From: Winnie the Pooh <im:pooh@100akerwood.com>",
    "From: <im:tigger@100akerwood.com>",
    "To: Winnie the Pooh <im:pooh@100akerwood.com>",
    "To: <im:tigger@100akerwood.com>",
    "cc: Winnie the Pooh <im:pooh@100akerwood.com>",
    "cc: <im:tigger@100akerwood.com>",
    "DateTime: 2001-02-01T12:16:49-05:00",
    "Subject:;lang=en Eeyore's feeling very depressed today",
]
# RFC 3862 §3.4: NS declarations followed by a use of the prefix.
RFC3862_NS_EXAMPLES = [
    [
        "NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
        "MyFeatures.WackyMessageOption: Use-silly-font",
    ],
    ["NS: acme <http://id.acme.widgets/wily-headers/>", "acme.runner-trap: set"],
    ["NS: widget <http://id.acme.widgets/wily-headers/>", "widget.runner-trap: set"],
    ["NS: <http://id.acme.widgets/wily-headers/>", "runner-trap: set"],
    ["NS: MyAlias <mid:MessageFeatures@id.foo.com>", "MyAlias.MyHeader: private-extension-data"],
]

# RFC 3922 §4.1.7 / §4.2.9 encapsulated text content with the §4.1.1/§4.1.2 headers.
RFC3922_4_MESSAGE = crlf(
    """Content-type: Message/CPIM

From: Juliet Capulet <im:juliet@example.com>
To: Romeo Montague <im:romeo@example.net>
Subject: Hi!
Subject:;lang=cz Ahoj!

Content-type: text/plain; charset=utf-8
Content-ID: <123456789@example.net>

Wherefore art thou, Romeo?"""
)

# RFC 3863 §4.2.2 (prefixed namespace).
RFC3863_4_2_2_PREFIXED = b"""<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
       entity="pres:someone@example.com">
     <impp:tuple id="sg89ae">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <impp:contact priority="0.8">tel:+09012345678</impp:contact>
     </impp:tuple>
   </impp:presence>
"""

# RFC 3863 §4.2.2 (default namespace).
RFC3863_4_2_2_DEFAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
   <presence xmlns="urn:ietf:params:xml:ns:pidf"
       entity="pres:someone@example.com">
     <tuple id="sg89ae">
       <status>
         <basic>open</basic>
       </status>
       <contact priority="0.8">tel:+09012345678</contact>
     </tuple>
   </presence>
"""

# RFC 3863 §4.2.4 (location status extension).
RFC3863_4_2_4 = b"""<?xml version="1.0" encoding="UTF-8"?>
   <presence xmlns="urn:ietf:params:xml:ns:pidf"
       xmlns:local="urn:example-com:pidf-status-type"
       entity="pres:someone@example.com">
     <tuple id="ub93s3">
       <status>
         <basic>open</basic>
         <local:location>home</local:location>
       </status>
       <contact>im:someone@example.com</contact>
     </tuple>
   </presence>
"""

# RFC 3863 §4.3.1 (default namespace with status extensions, incl. pidf:im).
RFC3863_4_3_1 = b"""<?xml version="1.0" encoding="UTF-8"?>
   <presence xmlns="urn:ietf:params:xml:ns:pidf"
        xmlns:im="urn:ietf:params:xml:ns:pidf:im"
        xmlns:myex="http://id.example.com/presence/"
        entity="pres:someone@example.com">
     <tuple id="bs35r9">
       <status>
         <basic>open</basic>
         <im:im>busy</im:im>
         <myex:location>home</myex:location>
       </status>
       <contact priority="0.8">im:someone@mobilecarrier.net</contact>
       <note xml:lang="en">Don't Disturb Please!</note>
       <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
       <timestamp>2001-10-27T16:49:29Z</timestamp>
     </tuple>
     <tuple id="eg92n8">
       <status>
         <basic>open</basic>
       </status>
       <contact priority="1.0">mailto:someone@example.com</contact>
     </tuple>
     <note>I'll be in Tokyo next week</note>
   </presence>
"""

# RFC 3863 §4.3.2 (other extension elements).
RFC3863_4_3_2 = b"""<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
        xmlns:myex="http://id.example.com/presence/"
        entity="pres:someone@example.com">
     <impp:tuple id="ck38g9">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <myex:mytupletag>Extended value in tuple</myex:mytupletag>
       <impp:contact priority="0.65">tel:+09012345678</impp:contact>
     </impp:tuple>
     <impp:tuple id="md66je">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <impp:contact priority="1.0">
          im:someone@mobilecarrier.net</impp:contact>
     </impp:tuple>
     <myex:mytag>My extended presentity information</myex:mytag>
   </impp:presence>
"""

# RFC 3863 §4.3.3 (mandatory-to-understand elements).
RFC3863_4_3_3 = b"""<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
        xmlns:myex="http://id.mycompany.com/presence/"
        entity="pres:someone@example.com">
     <impp:tuple id="tj25ds">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <myex:complexExtension>
         <myex:ex1 impp:mustUnderstand="1">val1</myex:ex1>
         <myex:ex2>val2</myex:ex2>
       </myex:complexExtension>
       <impp:contact priority="0.725">tel:+09012345678</impp:contact>
     </impp:tuple>
     <myex:mytag>My extended presentity information</myex:mytag>
   </impp:presence>
"""

# RFC 3922 §5.1.4 "Available Presence" PIDF.
RFC3922_5_1_4_OPEN = b"""<?xml version='1.0' encoding='UTF-8'?>
     <presence xmlns='urn:ietf:params:xml:ns:pidf'
               entity='pres:juliet@example.com'>

       <tuple id='balcony'>
         <status>
           <basic>open</basic>
         </status>
       </tuple>
     </presence>
"""

# RFC 3922 §5.1.6 status -> note, with show -> im:im.
RFC3922_5_1_6 = b"""<?xml version='1.0' encoding='UTF-8'?>
     <presence xmlns='urn:ietf:params:xml:ns:pidf'
               xmlns:im='urn:ietf:params:xml:ns:pidf:im'
               entity='pres:juliet@example.com'>
       <tuple id='balcony'>
         <status>
           <basic>open</basic>
           <im:im>away</im:im>
         </status>
         <note>retired to the chamber</note>
       </tuple>
     </presence>
"""

# RFC 3922 §5.2.9 "CLOSED Presence".
RFC3922_5_2_9_CLOSED = b"""<?xml version='1.0' encoding='UTF-8'?>
     <presence xmlns='urn:ietf:params:xml:ns:pidf'
               entity='pres:romeo@example.net'>
       <tuple id='orchard'>
         <status>
           <basic>closed</basic>
         </status>
       </tuple>
     </presence>
"""

# RFC 3922 §5.2.11 note element (with busy, which §5.2.10 maps to dnd).
RFC3922_5_2_11 = b"""<?xml version='1.0' encoding='UTF-8'?>
     <presence xmlns='urn:ietf:params:xml:ns:pidf'
               xmlns:im='urn:ietf:params:xml:ns:pidf:im'
               entity='pres:romeo@example.net'>
       <tuple id='orchard'>
         <status>
           <basic>open</basic>
           <im:im>busy</im:im>
         </status>
         <note>Wooing Juliet</note>
       </tuple>
     </presence>
"""

PIDF_EXAMPLES = {
    "rfc3863-4.2.2-prefixed": RFC3863_4_2_2_PREFIXED,
    "rfc3863-4.2.2-default": RFC3863_4_2_2_DEFAULT,
    "rfc3863-4.2.4": RFC3863_4_2_4,
    "rfc3863-4.3.1": RFC3863_4_3_1,
    "rfc3863-4.3.2": RFC3863_4_3_2,
    "rfc3863-4.3.3": RFC3863_4_3_3,
    "rfc3922-5.1.4": RFC3922_5_1_4_OPEN,
    "rfc3922-5.1.6": RFC3922_5_1_6,
    "rfc3922-5.2.9": RFC3922_5_2_9_CLOSED,
    "rfc3922-5.2.11": RFC3922_5_2_11,
}
